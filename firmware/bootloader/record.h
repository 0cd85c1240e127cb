/**
 * @file record.h
 * @brief The boot record (PROTOCOL.md section 1): what image the application area
 *        holds, written only after the image verified.
 */
#ifndef TSN_BOOT_RECORD_H
#define TSN_BOOT_RECORD_H

#include <stdint.h>

#include "flash.h"

#define RECORD_MAGIC   0x31425354UL /**< bytes "TSB1" */
#define RECORD_VERSION 1UL

/** The 32-byte record at the start of the record page, as stored (little-endian). */
typedef struct {
    uint32_t magic;
    uint32_t version;
    uint32_t image_size;
    uint32_t image_crc32;
    uint32_t app_base;
    uint32_t reserved[2];
    uint32_t record_crc32; /**< CRC-32 of the 28 bytes before it */
} boot_record;

_Static_assert(sizeof(boot_record) == 32U, "the boot record is 32 bytes");
_Static_assert(sizeof(boot_record) % FLASH_PROGRAM_UNIT == 0U, "the record is whole program units");

/** The board's record page and application area, from memory.ld. */
uint32_t record_page_base(void);
uint32_t record_page_bytes(void);
uint32_t record_app_base(void);
uint32_t record_app_max_bytes(void);

/** Copy the stored record to `record`; 1 if its magic and record_crc32 match. */
int record_read(boot_record *record);

/**
 * 1 if the stored record is valid, describes an image of this board's
 * application area (version, app_base, size in range) and the CRC-32 of the
 * image as it is in flash equals the record's: the application may be started.
 */
int record_image_bootable(void);

/** Program a record for an image of `image_size` bytes with CRC `image_crc32` into
 *  the (erased) record page, then read it back and check it. */
flash_status record_write(uint32_t image_size, uint32_t image_crc32);

/** CRC-32 of `length` bytes of the application area from `offset`, as read back. */
uint32_t record_app_crc(uint32_t offset, uint32_t length);

#endif /* TSN_BOOT_RECORD_H */
