/**
 * @file startup.c
 * @brief Vector table and reset code for every board (Cortex-M4F); the board's
 *        board.h gives the number of peripheral interrupts.
 *
 * Reset: point VTOR at this image's vector table, enable the FPU, paint the stack
 * (for the high-water mark) and fence its bottom with an MPU guard, copy .data,
 * zero .bss, unmask interrupts, run main(), hand its return value to
 * board_exit(). No C++ constructors are run (sections.ld refuses to link any).
 *
 * The same code starts a standalone image (from the reset vector), the
 * bootloader, and an application the bootloader branches to. The latter starts
 * with whatever the bootloader left (VTOR at the bootloader's table, interrupts
 * masked), hence the VTOR write and the final unmask; both are no-ops after a
 * real reset.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h"
#include "stack.h"

/* Symbols from sections.ld. */
extern uint32_t __stack_top;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __data_load;
extern uint32_t __bss_start;
extern uint32_t __bss_end;

int main(void);

/* Cortex-M system exception count (the first 16 vector table slots). */
#define NUM_SYSTEM_VECTORS 16
#define NUM_VECTORS        (NUM_SYSTEM_VECTORS + BOARD_NUM_IRQS)

typedef void (*vector_entry)(void);

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);

/* Drivers override these by defining a function of the same name. */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* The core reads the initial stack pointer and the reset address from here. */
__attribute__((section(".vectors"), used))
static const vector_entry vector_table[NUM_VECTORS] = {
    [0] = (vector_entry)(uintptr_t)&__stack_top,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    /* 7..10 reserved */
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    /* 13 reserved */
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    /* No peripheral interrupt is used yet; give one a named weak handler when a
     * driver needs it. */
    [NUM_SYSTEM_VECTORS ... NUM_VECTORS - 1] = Default_Handler,
};

void Reset_Handler(void)
{
    /* Exceptions must find this image's handlers, not the bootloader's. */
    SCB->VTOR = (uint32_t)(uintptr_t)vector_table & SCB_VTOR_TBLOFF_Msk;
    __DSB();
    __ISB();

    /* CPACR is 0 at reset, so the first FPU instruction would fault (UsageFault
     * NOCP). -mfloat-abi=hard code may use FPU registers anywhere: enable it first. */
    SCB->CPACR |= SCB_CPACR_CP10_CP11_FULL;
    __DSB();
    __ISB();

    /* While the stack is still empty: everything below the current stack pointer
     * gets the paint pattern, so stack_high_water_bytes() can later find how deep
     * the stack went. */
    stack_paint();
    stack_guard_enable();

    /* GCC turns these two loops into memcpy()/memset() calls (newlib's, linked by
     * host/firmware_build.py); both are safe before .data and .bss exist. */
    const uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0;
    }

    /* PRIMASK is 0 after a reset but 1 when the bootloader branched here. */
    __enable_irq();

    board_exit(main());
}

__attribute__((used, noreturn)) static void report_fault(void)
{
    board_fault(__get_IPSR() & IPSR_ISR_NUMBER_Msk);
}

/* Never returns, so it may start from a fresh stack: the fault may well be a
 * stack overflow, with SP in the guard where nothing can be pushed. */
__attribute__((naked)) void Default_Handler(void)
{
    __asm volatile(
        "movw r0, #:lower16:__stack_top \n"
        "movt r0, #:upper16:__stack_top \n"
        "msr  msp, r0                   \n"
        "b    report_fault              \n");
}
