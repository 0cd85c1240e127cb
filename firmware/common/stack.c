/**
 * @file stack.c
 * @brief Stack painting and high-water scan (the stack grows down from __stack_top).
 */
#include "stack.h"

#include "cortex_m.h"

/* Symbols from the board's linker script. */
extern uint32_t __stack_guard;
extern uint32_t __stack_limit;
extern uint32_t __bss_end; /* RAM holds the stack, .data and .bss, in that order */
extern uint32_t __stack_top;

void stack_paint(void)
{
    uint32_t *word = &__stack_limit;
    uint32_t stack_pointer;
    const uint32_t pattern = STACK_PAINT_WORD;
    /* Assembly, not C: the loop writes right up to the live stack pointer, so it
     * must not itself push anything, and the compiler must not turn it into a
     * memset() call whose frame would land in the region being painted. */
    __asm volatile(
        "    mov   %[sp_now], sp             \n"
        "1:  cmp   %[word], %[sp_now]        \n"
        "    bhs   2f                        \n"
        "    str   %[pattern], [%[word]], #4 \n"
        "    b     1b                        \n"
        "2:                                  \n"
        : [word] "+r"(word), [sp_now] "=&r"(stack_pointer)
        : [pattern] "r"(pattern)
        : "cc", "memory");
}

uint32_t stack_high_water_bytes(void)
{
    const uint32_t *word = &__stack_limit;
    while (word < &__stack_top && *word == STACK_PAINT_WORD) {
        ++word;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)word);
}

void stack_guard_enable(void)
{
    const uint32_t regions = (MPU->TYPE & MPU_TYPE_DREGION_Msk) >> MPU_TYPE_DREGION_Pos;
    const uint32_t guard_bytes = (uint32_t)((uintptr_t)&__stack_limit - (uintptr_t)&__stack_guard);
    if (regions == 0U || guard_bytes < 32U || (guard_bytes & (guard_bytes - 1U)) != 0U) {
        return; /* no MPU, or a guard the MPU cannot describe */
    }
    /* SIZE encodes 2^(SIZE + 1) bytes. */
    const uint32_t size_field = (uint32_t)__builtin_ctz(guard_bytes) - 1U;

    /* The highest-numbered region wins where regions overlap: nothing can lift the guard. */
    MPU->RNR = regions - 1U;
    MPU->RBAR = (uint32_t)(uintptr_t)&__stack_guard;
    MPU->RASR = MPU_RASR_XN_Msk | (0UL << MPU_RASR_AP_Pos) | (size_field << MPU_RASR_SIZE_Pos) |
                MPU_RASR_ENABLE_Msk;
    /* PRIVDEFENA: everything else keeps the default memory map. HFNMIENA stays 0, so
     * the HardFault handler may still use the guard words to report the overflow. */
    MPU->CTRL = MPU_CTRL_PRIVDEFENA_Msk | MPU_CTRL_ENABLE_Msk;
    __DSB();
    __ISB();
}

uint32_t stack_size_bytes(void)
{
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_limit);
}

uint32_t static_ram_bytes(void)
{
    return (uint32_t)((uintptr_t)&__bss_end - (uintptr_t)&__stack_limit);
}
