/**
 * @file timer.c
 * @brief SysTick as a 64-bit counter: the 24-bit down-counter plus a wrap count.
 */
#include "timer.h"

#include "board.h"
#include "cortex_m.h"

/* Longest period: the counter runs RELOAD..0, i.e. RELOAD + 1 ticks per wrap. */
#define SYSTICK_RELOAD  SysTick_LOAD_RELOAD_Msk
#define SYSTICK_PERIOD  ((uint64_t)SYSTICK_RELOAD + 1U)

static volatile uint32_t s_wraps;

void SysTick_Handler(void)
{
    ++s_wraps;
}

void timer_init(void)
{
    SysTick->CTRL = 0;
    SysTick->LOAD = SYSTICK_RELOAD;
    SysTick->VAL = 0; /* any write clears the counter; it reloads on the next tick */
    s_wraps = 0;
    SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk |
                    SysTick_CTRL_ENABLE_Msk;
}

uint64_t timer_now(void)
{
    /* The race: the counter can wrap after its interrupt was last serviced but
     * before we read VAL; then VAL is already a fresh (large) value while s_wraps
     * is still the old one, and the result jumps back by a whole period. With
     * interrupts masked s_wraps cannot change under us, and the SysTick pending
     * bit tells whether a wrap happened that the handler has not counted yet;
     * if so, re-read VAL so it is certainly a post-wrap value. (A second wrap
     * within these few instructions would need 2^24 ticks of masking.) */
    const uint32_t primask = __get_PRIMASK();
    __disable_irq();
    uint32_t wraps = s_wraps;
    uint32_t val = SysTick->VAL;
    if (SCB->ICSR & SCB_ICSR_PENDSTSET_Msk) {
        val = SysTick->VAL;
        ++wraps;
    }
    __set_PRIMASK(primask);
    return (uint64_t)wraps * SYSTICK_PERIOD + (SYSTICK_RELOAD - val);
}

uint32_t timer_wraps(void)
{
    return s_wraps;
}
