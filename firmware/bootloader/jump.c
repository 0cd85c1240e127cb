/**
 * @file jump.c
 * @brief Leave the core as close to its reset state as an application expects, then branch.
 */
#include "jump.h"

#include "cortex_m.h"

/* From the board's memory.ld. */
extern const uint8_t __ram_base[];
extern const uint8_t __ram_size[];
extern const uint8_t __app_base[];
extern const uint8_t __app_limit[];

#define VECTOR_INITIAL_SP 0U
#define VECTOR_RESET      1U
#define THUMB_BIT         1UL
#define STACK_ALIGN_MASK  7UL /* AAPCS: 8-byte aligned stack at public interfaces */
#define ALL_LINES         0xFFFFFFFFUL

int jump_vectors_plausible(uint32_t app_base)
{
    const volatile uint32_t *vectors = (const volatile uint32_t *)(uintptr_t)app_base;
    const uint32_t sp = vectors[VECTOR_INITIAL_SP];
    const uint32_t pc = vectors[VECTOR_RESET];
    const uint32_t ram_low = (uint32_t)(uintptr_t)__ram_base;
    const uint32_t ram_high = ram_low + (uint32_t)(uintptr_t)__ram_size;
    const uint32_t app_low = (uint32_t)(uintptr_t)__app_base;
    const uint32_t app_high = (uint32_t)(uintptr_t)__app_limit;
    const int sp_ok = sp > ram_low && sp <= ram_high && (sp & STACK_ALIGN_MASK) == 0U;
    const int pc_ok = (pc & THUMB_BIT) != 0U && pc >= app_low && pc < app_high;
    return sp_ok && pc_ok;
}

void jump_to_app(uint32_t app_base)
{
    const volatile uint32_t *vectors = (const volatile uint32_t *)(uintptr_t)app_base;

    __disable_irq();

    /* Nothing of the bootloader's may fire in the application: stop SysTick,
     * disable and un-pend every peripheral interrupt. */
    SysTick->CTRL = 0U;
    SCB->ICSR = SCB_ICSR_PENDSTCLR_Msk;
    for (uint32_t i = 0; i < NVIC_IRQ_WORDS; ++i) {
        NVIC->ICER[i] = ALL_LINES;
        NVIC->ICPR[i] = ALL_LINES;
    }

    /* The application sets up its own MPU regions (startup's stack guard). */
    MPU->CTRL = 0U;

    SCB->VTOR = app_base & SCB_VTOR_TBLOFF_Msk;
    /* Privileged thread mode on MSP, no FP context active: the reset state. */
    __set_CONTROL(0U);
    __DSB();
    __ISB();

    const uint32_t sp = vectors[VECTOR_INITIAL_SP];
    const uint32_t pc = vectors[VECTOR_RESET];
    /* Interrupts stay masked (PRIMASK); the application's startup unmasks them. */
    __asm volatile(
        "msr msp, %0 \n"
        "bx  %1      \n"
        :
        : "r"(sp), "r"(pc)
        : "memory");
    __builtin_unreachable();
}
