/**
 * @file record.c
 * @brief Boot record read, validation and write; CRC of the application area.
 */
#include "record.h"

#include <stddef.h>
#include <string.h>

#include "crc32.h"

/* From the board's memory.ld. */
extern const uint8_t __record_base[];
extern const uint8_t __record_size[];
extern const uint8_t __app_base[];
extern const uint8_t __app_limit[];

#define RECORD_CRC_BYTES offsetof(boot_record, record_crc32)

uint32_t record_page_base(void)
{
    return (uint32_t)(uintptr_t)__record_base;
}

uint32_t record_page_bytes(void)
{
    return (uint32_t)(uintptr_t)__record_size;
}

uint32_t record_app_base(void)
{
    return (uint32_t)(uintptr_t)__app_base;
}

uint32_t record_app_max_bytes(void)
{
    return (uint32_t)((uintptr_t)__app_limit - (uintptr_t)__app_base);
}

int record_read(boot_record *record)
{
    memcpy(record, __record_base, sizeof(*record));
    return record->magic == RECORD_MAGIC &&
           crc32_update(0U, record, RECORD_CRC_BYTES) == record->record_crc32;
}

uint32_t record_app_crc(uint32_t offset, uint32_t length)
{
    return crc32_update(0U, __app_base + offset, length);
}

int record_image_bootable(void)
{
    boot_record record;
    if (!record_read(&record)) {
        return 0;
    }
    if (record.version != RECORD_VERSION || record.app_base != record_app_base() ||
        record.image_size == 0U || record.image_size > record_app_max_bytes()) {
        return 0;
    }
    return record_app_crc(0U, record.image_size) == record.image_crc32;
}

flash_status record_write(uint32_t image_size, uint32_t image_crc32)
{
    boot_record record = {
        .magic = RECORD_MAGIC,
        .version = RECORD_VERSION,
        .image_size = image_size,
        .image_crc32 = image_crc32,
        .app_base = record_app_base(),
        .reserved = {0U, 0U},
        .record_crc32 = 0U,
    };
    record.record_crc32 = crc32_update(0U, &record, RECORD_CRC_BYTES);

    const flash_status status = flash_program((uint32_t)(uintptr_t)__record_base, &record, sizeof(record));
    if (status != FLASH_OK) {
        return status;
    }
    boot_record stored;
    if (!record_read(&stored) || memcmp(&stored, &record, sizeof(record)) != 0) {
        return FLASH_ERR_VERIFY;
    }
    return FLASH_OK;
}
