/**
 * @file timer.c
 * @brief 64-bit tick counter: SysTick plus a wrap count, or DWT->CYCCNT extended in software.
 */
#include "timer.h"

#include "board.h"
#include "cortex_m.h"

#ifndef BOARD_TIMER_DWT
#define BOARD_TIMER_DWT 0
#endif

/* Longest period: the counter runs RELOAD..0, i.e. RELOAD + 1 ticks per wrap. */
#define SYSTICK_RELOAD  SysTick_LOAD_RELOAD_Msk
#define SYSTICK_PERIOD  ((uint64_t)SYSTICK_RELOAD + 1U)

#define CYCCNT_BITS 32U

static volatile uint32_t s_wraps;

#if BOARD_TIMER_DWT
/* CYCCNT extended to 64 bits: the last value read and the count of its wraps. */
static uint32_t s_cyccnt_last;
static uint32_t s_cyccnt_high;

/* Caller masks interrupts. Sound as long as it runs at least once per 2^32
 * cycles (36 s at 120 MHz): the SysTick handler sees to that. */
static uint64_t cyccnt_extend(void)
{
    const uint32_t now = DWT->CYCCNT;
    if (now < s_cyccnt_last) {
        ++s_cyccnt_high;
    }
    s_cyccnt_last = now;
    return ((uint64_t)s_cyccnt_high << CYCCNT_BITS) | now;
}
#endif

void SysTick_Handler(void)
{
    ++s_wraps;
#if BOARD_TIMER_DWT
    (void)cyccnt_extend(); /* exceptions do not nest with themselves: no masking needed */
#endif
}

static void systick_start(void)
{
    SysTick->CTRL = 0;
    SysTick->LOAD = SYSTICK_RELOAD;
    SysTick->VAL = 0; /* any write clears the counter; it reloads on the next tick */
    s_wraps = 0;
    SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk |
                    SysTick_CTRL_ENABLE_Msk;
}

void timer_init(void)
{
#if BOARD_TIMER_DWT
    /* The DWT is unclocked until TRCENA is set (a debugger may have done so already). */
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
    DWT->CYCCNT = 0;
    s_cyccnt_last = 0;
    s_cyccnt_high = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
#endif
    systick_start();
}

uint64_t timer_now(void)
{
    const uint32_t primask = __get_PRIMASK();
    __disable_irq();
#if BOARD_TIMER_DWT
    const uint64_t now = cyccnt_extend();
#else
    /* The race: the counter can wrap after its interrupt was last serviced but
     * before we read VAL; then VAL is already a fresh (large) value while s_wraps
     * is still the old one, and the result jumps back by a whole period. With
     * interrupts masked s_wraps cannot change under us, and the SysTick pending
     * bit tells whether a wrap happened that the handler has not counted yet;
     * if so, re-read VAL so it is certainly a post-wrap value. (A second wrap
     * within these few instructions would need 2^24 ticks of masking.) */
    uint32_t wraps = s_wraps;
    uint32_t val = SysTick->VAL;
    if (SCB->ICSR & SCB_ICSR_PENDSTSET_Msk) {
        val = SysTick->VAL;
        ++wraps;
    }
    const uint64_t now = (uint64_t)wraps * SYSTICK_PERIOD + (SYSTICK_RELOAD - val);
#endif
    __set_PRIMASK(primask);
    return now;
}

uint32_t timer_wraps(void)
{
    return s_wraps;
}

const char *timer_kind(void)
{
    return BOARD_TIMER_DWT ? "dwt" : "systick";
}

uint32_t timer_hz(void)
{
    return (uint32_t)TIMER_TICK_HZ;
}

uint64_t timer_overhead(void)
{
    const uint64_t start = timer_now();
    const uint64_t end = timer_now();
    return end - start;
}
