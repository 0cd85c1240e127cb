/**
 * @file bootctl.h
 * @brief The hand-off word between an application and the serial bootloader.
 *
 * The last 16 bytes of RAM (linker symbol __handoff, see PROTOCOL.md section 1)
 * belong to no image: neither .data, .bss nor a stack reaches them, and a reset
 * leaves RAM alone on both boards. An application that wants to be replaced
 * writes BOOTCTL_HANDOFF_BOOT to the first word and resets; the bootloader finds
 * it, clears it and stays instead of starting the application again.
 */
#ifndef TSN_BOOTCTL_H
#define TSN_BOOTCTL_H

#include <stdint.h>

/** "BOOT" read as a little-endian word: stay in the bootloader. */
#define BOOTCTL_HANDOFF_BOOT 0x544F4F42UL

/** Write the hand-off word and reset the system (SCB->AIRCR SYSRESETREQ). */
void bootctl_enter_bootloader(void) __attribute__((noreturn));

/**
 * Bootloader side: non-zero if the hand-off word asks to stay. The word is
 * cleared either way, so the request holds for one reset only.
 */
int bootctl_take_request(void);

#endif /* TSN_BOOTCTL_H */
