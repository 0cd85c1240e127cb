/**
 * @file flash.c
 * @brief "Flash" for QEMU mps2-an386: the SSRAM at 0x0 behaving like STM32L4 flash.
 *
 * QEMU's flash stand-in is plain RAM, so anything would work; this driver
 * enforces real flash rules instead, so that bootloader bugs show up under QEMU:
 * erase whole 8 KiB pages to 0xFF, program 8-byte units at aligned addresses,
 * and refuse to program a unit that is not erased (STM32L4 sets PROGERR there).
 */
#include "flash.h"

#include <string.h>

/* Emulate the larger page of the real board (STM32L4R5 single-bank mode). */
#define QEMU_FLASH_PAGE_BYTES 8192U
#define ERASED_WORD           0xFFFFFFFFUL
#define WORDS_PER_UNIT        (FLASH_PROGRAM_UNIT / sizeof(uint32_t))

uint32_t flash_page_bytes(void)
{
    return QEMU_FLASH_PAGE_BYTES;
}

flash_status flash_erase(uint32_t address, uint32_t length)
{
    const uint32_t page = flash_page_bytes();
    const flash_status checked = flash_check_erase(address, length);
    if (checked != FLASH_OK) {
        return checked;
    }
    const uint32_t words = (length + page - 1U) / page * (page / sizeof(uint32_t));
    volatile uint32_t *word = (volatile uint32_t *)(uintptr_t)address;
    for (uint32_t i = 0; i < words; ++i) {
        word[i] = ERASED_WORD;
    }
    return FLASH_OK;
}

flash_status flash_program(uint32_t address, const void *data, uint32_t length)
{
    const flash_status checked = flash_check_program(address, length);
    if (checked != FLASH_OK) {
        return checked;
    }
    const uint8_t *source = (const uint8_t *)data;
    for (uint32_t done = 0; done < length; done += FLASH_PROGRAM_UNIT) {
        volatile uint32_t *unit = (volatile uint32_t *)(uintptr_t)(address + done);
        uint32_t words[WORDS_PER_UNIT];
        memcpy(words, source + done, sizeof(words)); /* the source may be unaligned */
        for (uint32_t i = 0; i < WORDS_PER_UNIT; ++i) {
            if (unit[i] != ERASED_WORD) {
                return FLASH_ERR_NOT_ERASED;
            }
        }
        for (uint32_t i = 0; i < WORDS_PER_UNIT; ++i) {
            unit[i] = words[i];
        }
        for (uint32_t i = 0; i < WORDS_PER_UNIT; ++i) {
            if (unit[i] != words[i]) {
                return FLASH_ERR_VERIFY;
            }
        }
    }
    return FLASH_OK;
}
