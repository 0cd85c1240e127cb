/**
 * @file semihost.h
 * @brief Arm semihosting calls (`bkpt 0xAB`), for QEMU or a debugger.
 *
 * Only usable with a semihosting host attached (QEMU: -semihosting-config
 * enable=on,target=native). Without one, the breakpoint faults.
 */
#ifndef TSN_SEMIHOST_H
#define TSN_SEMIHOST_H

#include <stdint.h>

#define SEMIHOST_SYS_WRITE0          0x04U /**< write a NUL-terminated string */
#define SEMIHOST_SYS_EXIT            0x18U
#define SEMIHOST_SYS_EXIT_EXTENDED   0x20U /**< exit with a status code (semihosting v2) */
#define ADP_Stopped_ApplicationExit  0x20026U

/** Issue semihosting operation `op` with parameter `arg`; returns the host's r0. */
uint32_t semihost_call(uint32_t op, uintptr_t arg);

/** Write a NUL-terminated string to the host's console (debug aid). */
void semihost_write0(const char *text);

/** End the program; the host (QEMU) exits with status `code`. */
void semihost_exit(int code) __attribute__((noreturn));

#endif /* TSN_SEMIHOST_H */
