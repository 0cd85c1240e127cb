/**
 * @file timer.h
 * @brief A 64-bit tick counter on SysTick, clocked by the core clock.
 *
 * Under QEMU with -icount shift=N each instruction advances virtual time by 2^N ns
 * and SysTick counts at 25 MHz, so tick differences are deterministic instruction
 * counts: instructions = ticks * 40 / 2^N (shift 6: ticks / 1.6). On silicon
 * they are core clock cycles.
 */
#ifndef TSN_TIMER_H
#define TSN_TIMER_H

#include <stdint.h>

#include "board.h"

/** Ticks per second of timer_now(). */
#define TIMER_TICK_HZ BOARD_CORE_CLOCK_HZ

/** Start SysTick free-running with its wrap interrupt. Call once, early. */
void timer_init(void);

/** Ticks since timer_init(); monotonic, no wraps lost. Interrupts briefly masked. */
uint64_t timer_now(void);

/** SysTick wraps seen so far (one every 2^24 ticks). */
uint32_t timer_wraps(void);

#endif /* TSN_TIMER_H */
