/**
 * @file board.h
 * @brief Board support for NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F at 120 MHz).
 *
 * Every board directory provides this same interface; firmware/common and the
 * apps use nothing board-specific beyond it. The console is LPUART1 on PG7 (TX)
 * and PG8 (RX), wired to the ST-LINK's virtual COM port, 115200 8N1.
 */
#ifndef TSN_BOARD_H
#define TSN_BOARD_H

#include <stdint.h>

#define BOARD_NAME "nucleo-l4r5zi"

/** Core clock: MSI 4 MHz -> PLL (x60 / 2), voltage range 1 boost mode. */
#define BOARD_CORE_CLOCK_HZ 120000000UL

/** Peripheral interrupt lines of the STM32L4R5 (the last one, DMAMUX1_OVR, is 94). */
#define BOARD_NUM_IRQS 95

/** Timer source (common/timer.c): the DWT cycle counter. */
#define BOARD_TIMER_DWT 1

/** Exit codes board_exit() is given (shown on the console: no host process to exit). */
#define BOARD_EXIT_SUCCESS 0
#define BOARD_EXIT_FAILURE 1
#define BOARD_EXIT_FAULT   2 /**< an unexpected exception or fault */

/** Clock the core at BOARD_CORE_CLOCK_HZ and bring up the console UART. Safe to call more than once. */
void board_init(void);

/** Blocking write of one byte to the console UART. */
void board_uart_putc(uint8_t byte);

/** Blocking read of one byte from the console UART. */
uint8_t board_uart_getc(void);

/** Non-zero when a byte is waiting in the console UART. */
int board_uart_rx_ready(void);

/** Wait until every byte written has left the UART (before a reset or a jump). */
void board_uart_flush(void);

/** Stop the program (interrupts off, idle forever); never returns. */
void board_exit(int code) __attribute__((noreturn));

/** Report an unexpected exception (its number) and stop; never returns. */
void board_fault(uint32_t exception_number) __attribute__((noreturn));

#endif /* TSN_BOARD_H */
