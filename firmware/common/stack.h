/**
 * @file stack.h
 * @brief Stack high-water measurement by painting.
 *
 * stack_paint() fills the unused stack (everything below the current stack
 * pointer) with STACK_PAINT_WORD; stack_high_water_bytes() later scans up from
 * the stack limit for the first overwritten word. Startup paints once at reset;
 * an app may repaint to measure one region of code (e.g. one layer).
 */
#ifndef TSN_STACK_H
#define TSN_STACK_H

#include <stdint.h>

/** The paint pattern: an unlikely value for real stack contents. */
#define STACK_PAINT_WORD 0xDEADBEEFUL

/** Paint every word from the stack limit up to (not including) the current SP. */
void stack_paint(void);

/** Deepest stack use since the last paint, in bytes below the stack top. */
uint32_t stack_high_water_bytes(void);

/**
 * Make the guard under the stack (linker symbols __stack_guard up to
 * __stack_limit, a power of two >= 32 bytes, aligned to its size) a no-access MPU
 * region, so an overflow faults at once (reported as a HardFault with CFSR
 * DACCVIOL or MSTKERR) instead of corrupting memory. No-op without an MPU.
 */
void stack_guard_enable(void);

/** Static RAM of the image: the stack reservation, .data and .bss (from the linker's symbols). */
uint32_t static_ram_bytes(void);

/** The reserved stack size, in bytes (the guard not included). */
uint32_t stack_size_bytes(void);

#endif /* TSN_STACK_H */
