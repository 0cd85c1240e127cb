/**
 * @file board_api.h
 * @brief The interface every board provides (boards/<board>/board.c), declared once.
 *
 * Each boards/<board>/board.h defines the board's facts (BOARD_NAME,
 * BOARD_CORE_CLOCK_HZ, BOARD_NUM_IRQS, BOARD_TIMER_DWT) and includes this file;
 * firmware/common and the apps use nothing board-specific beyond it.
 */
#ifndef TSN_BOARD_API_H
#define TSN_BOARD_API_H

#include <stdint.h>

/** Exit codes given to board_exit(): a process exit status under QEMU, shown on the console on hardware. */
#define BOARD_EXIT_SUCCESS 0
#define BOARD_EXIT_FAILURE 1
#define BOARD_EXIT_FAULT   2 /**< an unexpected exception or fault */

/** Clock the core and bring up the console UART. Safe to call more than once. */
void board_init(void);

/** Blocking write of one byte to the console UART. */
void board_uart_putc(uint8_t byte);

/** Blocking read of one byte from the console UART. */
uint8_t board_uart_getc(void);

/** Non-zero when a byte is waiting in the console UART. */
int board_uart_rx_ready(void);

/** Wait until every byte written has left the UART (before a reset or a jump). */
void board_uart_flush(void);

/** Stop the program and report code to the host where there is one; never returns. */
void board_exit(int code) __attribute__((noreturn));

/** Report an unexpected exception (its number) on the console and stop; never returns
 *  (firmware/common/fault.c). */
void board_fault(uint32_t exception_number) __attribute__((noreturn));

#endif /* TSN_BOARD_API_H */
