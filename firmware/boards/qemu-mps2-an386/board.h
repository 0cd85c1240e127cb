/**
 * @file board.h
 * @brief Board support for QEMU's mps2-an386 (Arm MPS2 FPGA image AN386, Cortex-M4F).
 *
 * Every board directory provides this same interface; firmware/common and the
 * apps use nothing board-specific beyond it.
 */
#ifndef TSN_BOARD_H
#define TSN_BOARD_H

#include <stdint.h>

#define BOARD_NAME "qemu-mps2-an386"

/** Core clock; QEMU clocks SysTick (CLKSOURCE = processor) at this rate. */
#define BOARD_CORE_CLOCK_HZ 25000000UL

/** External interrupt lines of the AN386 image as QEMU models it. */
#define BOARD_NUM_IRQS 32

/** Timer source (common/timer.c): QEMU's DWT->CYCCNT reads 0, so SysTick. */
#define BOARD_TIMER_DWT 0

/** Exit codes board_exit() hands to the host (QEMU's process exit status). */
#define BOARD_EXIT_SUCCESS 0
#define BOARD_EXIT_FAILURE 1
#define BOARD_EXIT_FAULT   2 /**< an unexpected exception or fault */

/** Bring up the console UART. Safe to call more than once. */
void board_init(void);

/** Blocking write of one byte to the console UART. */
void board_uart_putc(uint8_t byte);

/** Blocking read of one byte from the console UART. */
uint8_t board_uart_getc(void);

/** Non-zero when a byte is waiting in the console UART. */
int board_uart_rx_ready(void);

/** Wait until every byte written has left the UART (before a reset or a jump). */
void board_uart_flush(void);

/** Stop the program and report code to the host; never returns. */
void board_exit(int code) __attribute__((noreturn));

/** Report an unexpected exception (its number) and stop; never returns. */
void board_fault(uint32_t exception_number) __attribute__((noreturn));

#endif /* TSN_BOARD_H */
