/**
 * @file fault.c
 * @brief board_fault(): report an unexpected exception on the console and stop.
 *
 * Shared by every board: the fault status registers are the core's (SCB), the
 * console and the way to stop are the board's.
 */
#include "board.h"
#include "cortex_m.h"
#include "uart.h"

#define HEX32_DIGITS 8

static void put_register(const char *name, uint32_t value)
{
    uart_puts(name);
    uart_puts(" 0x");
    uart_put_hex(value, HEX32_DIGITS);
}

void board_fault(uint32_t exception_number)
{
    /* The fault may have come before main() set up the console. */
    board_init();
    put_register("\nfault exception", exception_number);
    put_register(" cfsr", SCB->CFSR);
    put_register(" hfsr", SCB->HFSR);
    put_register(" mmfar", SCB->MMFAR);
    put_register(" bfar", SCB->BFAR);
    uart_puts("\n");
    board_exit(BOARD_EXIT_FAULT);
}
