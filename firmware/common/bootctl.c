/**
 * @file bootctl.c
 * @brief Hand-off word and system reset: how an application returns to the bootloader.
 */
#include "bootctl.h"

#include "cortex_m.h"

/* The first word of the 16-byte hand-off area at the end of RAM (memory.ld). */
extern volatile uint32_t __handoff;

void bootctl_enter_bootloader(void)
{
    __disable_irq();
    __handoff = BOOTCTL_HANDOFF_BOOT;
    /* The word must be in RAM before the reset request can take effect. */
    __DSB();
    SCB->AIRCR = SCB_AIRCR_VECTKEY | (SCB->AIRCR & SCB_AIRCR_PRIGROUP_Msk) |
                 SCB_AIRCR_SYSRESETREQ_Msk;
    __DSB();
    for (;;) {
        /* The reset is asynchronous: wait here until it lands. */
    }
}

int bootctl_take_request(void)
{
    const int requested = (__handoff == BOOTCTL_HANDOFF_BOOT);
    __handoff = 0U;
    return requested;
}
