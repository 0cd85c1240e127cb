/**
 * @file timer.h
 * @brief A 64-bit tick counter clocked by the core clock: SysTick or DWT->CYCCNT.
 *
 * The board picks the source (board.h): BOARD_TIMER_DWT non-zero selects the DWT
 * cycle counter, otherwise SysTick is used.
 *
 * - SysTick (QEMU, where DWT->CYCCNT reads 0): the 24-bit down-counter plus a wrap
 *   count kept by its interrupt. Under QEMU with -icount shift=N each instruction
 *   advances virtual time by 2^N ns and SysTick counts at 25 MHz, so tick
 *   differences are deterministic instruction counts: instructions = ticks * 40 /
 *   2^N (shift 6: ticks / 1.6).
 * - DWT (silicon): CYCCNT counts core cycles and wraps every 2^32; SysTick still
 *   interrupts every 2^24 cycles, only so that no CYCCNT wrap goes unseen while
 *   extending it to 64 bits.
 *
 * Either way a tick is one core clock cycle and each SysTick wrap (every 2^24
 * ticks) adds its short handler to whatever is being timed.
 */
#ifndef TSN_TIMER_H
#define TSN_TIMER_H

#include <stdint.h>

#include "board.h"

/** Ticks per second of timer_now(). */
#define TIMER_TICK_HZ BOARD_CORE_CLOCK_HZ

/** Start the counter (and the SysTick wrap interrupt). Call once, early. */
void timer_init(void);

/** Ticks since timer_init(); monotonic, no wraps lost. Interrupts briefly masked. */
uint64_t timer_now(void);

/** SysTick wraps seen so far (one every 2^24 ticks). */
uint32_t timer_wraps(void);

/** The source: "systick" or "dwt" (the tsn-info `timer=` field). */
const char *timer_kind(void);

/** Ticks of an empty timed region: what every timed figure includes on top of its work. */
uint64_t timer_overhead(void);

/** Ticks per second (TIMER_TICK_HZ, as a function for reports). */
uint32_t timer_hz(void);

#endif /* TSN_TIMER_H */
