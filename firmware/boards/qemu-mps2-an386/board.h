/**
 * @file board.h
 * @brief Board support for QEMU's mps2-an386 (Arm MPS2 FPGA image AN386, Cortex-M4F).
 *
 * The board's facts; the functions every board provides are in common/board_api.h.
 */
#ifndef TSN_BOARD_H
#define TSN_BOARD_H

#define BOARD_NAME "qemu-mps2-an386"

/** Core clock; QEMU clocks SysTick (CLKSOURCE = processor) at this rate. */
#define BOARD_CORE_CLOCK_HZ 25000000UL

/** External interrupt lines of the AN386 image as QEMU models it. */
#define BOARD_NUM_IRQS 32

/** Timer source (common/timer.c): QEMU's DWT->CYCCNT reads 0, so SysTick. */
#define BOARD_TIMER_DWT 0

#include "board_api.h"

#endif /* TSN_BOARD_H */
