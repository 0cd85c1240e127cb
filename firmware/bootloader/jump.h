/**
 * @file jump.h
 * @brief Hand the core to the application (PROTOCOL.md section 2, "Starting the application").
 */
#ifndef TSN_BOOT_JUMP_H
#define TSN_BOOT_JUMP_H

#include <stdint.h>

/**
 * 1 if the vector table at `app_base` looks startable: its initial stack pointer
 * lies in RAM (8-byte aligned) and its reset vector is a Thumb address inside
 * the application area.
 */
int jump_vectors_plausible(uint32_t app_base);

/**
 * Disable SysTick, every NVIC interrupt and the MPU, mask interrupts, set VTOR to
 * `app_base`, load MSP from its word 0 and branch to its word 1. Never returns.
 */
void jump_to_app(uint32_t app_base) __attribute__((noreturn));

#endif /* TSN_BOOT_JUMP_H */
