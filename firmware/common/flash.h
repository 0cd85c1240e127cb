/**
 * @file flash.h
 * @brief Board flash access for the bootloader: page erase and 64-bit programming.
 *
 * Implemented per board in boards/<board>/flash.c. Every call is range-checked
 * first: only the boot record page and the application area
 * [__record_base, __app_limit) may be erased or programmed, so the bootloader can
 * never overwrite itself (PROTOCOL.md section 1). Programming follows the
 * strictest board (STM32L4): 8-byte units at 8-byte aligned addresses, each unit
 * programmed once after an erase. Flash is read through plain pointers.
 */
#ifndef TSN_FLASH_H
#define TSN_FLASH_H

#include <stdint.h>

/**
 * 0 on success, else error bits: the FLASH_ERR_* flags below in the high half,
 * and in the low 16 bits whatever error flags the board's flash controller
 * reported (STM32L4: FLASH_SR). Sent to the host as FLASH_ERROR's payload.
 */
typedef uint32_t flash_status;

#define FLASH_OK              0x00000000UL
#define FLASH_ERR_RANGE       0x80000000UL /**< outside the record page + application area */
#define FLASH_ERR_ALIGN       0x40000000UL /**< address or length not on a page / 8-byte unit */
#define FLASH_ERR_NOT_ERASED  0x20000000UL /**< programming a unit that is not erased */
#define FLASH_ERR_VERIFY      0x10000000UL /**< read-back differs from what was written */
#define FLASH_ERR_TIMEOUT     0x08000000UL /**< the controller stayed busy too long */
#define FLASH_ERR_LOCKED      0x04000000UL /**< the controller refused to unlock */
#define FLASH_ERR_CONTROLLER_Msk 0x0000FFFFUL /**< the controller's own error flags */

/** What an erased byte reads as. */
#define FLASH_ERASED_BYTE 0xFFU

/** Bytes programmed at once, and the alignment of every program call. */
#define FLASH_PROGRAM_UNIT 8U

/** The erase page size in bytes (a power of two, at most 8 KiB on every board). */
uint32_t flash_page_bytes(void);

/**
 * Erase the pages covering [address, address + length): address must be page
 * aligned; length is rounded up to whole pages. Erased bytes read 0xFF.
 */
flash_status flash_erase(uint32_t address, uint32_t length);

/**
 * Program `length` bytes (a multiple of FLASH_PROGRAM_UNIT) at `address` (aligned
 * to it) from `data` (any alignment). Every unit must be erased; each is read back.
 */
flash_status flash_program(uint32_t address, const void *data, uint32_t length);

/* The writable window, from the board's memory.ld. */
extern const uint8_t __record_base[];
extern const uint8_t __app_limit[];

/** Non-zero if [address, address + length) lies inside the writable window. */
static inline int flash_range_writable(uint32_t address, uint32_t length)
{
    const uint32_t low = (uint32_t)(uintptr_t)__record_base;
    const uint32_t high = (uint32_t)(uintptr_t)__app_limit;
    return address >= low && address <= high && length <= high - address;
}

/** The argument checks every board's flash_erase() makes first: FLASH_OK or the error.
 *  The window's ends are page aligned, so a page-aligned start keeps the range,
 *  rounded up to whole pages, inside it. */
static inline flash_status flash_check_erase(uint32_t address, uint32_t length)
{
    if ((address & (flash_page_bytes() - 1U)) != 0U) {
        return FLASH_ERR_ALIGN;
    }
    return flash_range_writable(address, length) ? FLASH_OK : FLASH_ERR_RANGE;
}

/** The argument checks every board's flash_program() makes first: FLASH_OK or the error. */
static inline flash_status flash_check_program(uint32_t address, uint32_t length)
{
    if ((address % FLASH_PROGRAM_UNIT) != 0U || (length % FLASH_PROGRAM_UNIT) != 0U) {
        return FLASH_ERR_ALIGN;
    }
    return flash_range_writable(address, length) ? FLASH_OK : FLASH_ERR_RANGE;
}

#endif /* TSN_FLASH_H */
