/**
 * @file board.h
 * @brief Board support for NUCLEO-L4R5ZI (STM32L4R5ZI, Cortex-M4F at 120 MHz).
 *
 * The board's facts; the functions every board provides are declared in
 * common/board_api.h. The console is LPUART1 on PG7 (TX) and PG8 (RX), wired to
 * the ST-LINK's virtual COM port, 115200 8N1.
 */
#ifndef TSN_BOARD_H
#define TSN_BOARD_H

#define BOARD_NAME "nucleo-l4r5zi"

/** Core clock: MSI 4 MHz -> PLL (x60 / 2), voltage range 1 boost mode. */
#define BOARD_CORE_CLOCK_HZ 120000000UL

/** Peripheral interrupt lines of the STM32L4R5 (the last one, DMAMUX1_OVR, is 94). */
#define BOARD_NUM_IRQS 95

/** Timer source (common/timer.c): the DWT cycle counter. */
#define BOARD_TIMER_DWT 1

#include "board_api.h"

#endif /* TSN_BOARD_H */
