/**
 * @file semihost.c
 * @brief Arm semihosting: operation in r0, parameter in r1, `bkpt 0xAB` (Thumb).
 */
#include "semihost.h"

uint32_t semihost_call(uint32_t op, uintptr_t arg)
{
    register uint32_t r0 __asm("r0") = op;
    register uintptr_t r1 __asm("r1") = arg;
    /* "memory": the host may read the parameter block r1 points to. */
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_write0(const char *text)
{
    (void)semihost_call(SEMIHOST_SYS_WRITE0, (uintptr_t)text);
}

void semihost_exit(int code)
{
    /* Plain SYS_EXIT on 32-bit Arm cannot carry a status; SYS_EXIT_EXTENDED takes
     * a two-word block {reason, subcode} and QEMU exits with the subcode. */
    const uint32_t block[2] = {ADP_Stopped_ApplicationExit, (uint32_t)code};
    (void)semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, (uintptr_t)block);
    for (;;) {
        /* Only reached if the host ignored the exit. */
    }
}
