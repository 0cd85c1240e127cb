/**
 * @file crc32.h
 * @brief CRC-32 as zlib computes it (reflected polynomial 0xEDB88320, initial and
 *        final XOR 0xFFFFFFFF), so the host checks results with zlib.crc32.
 *
 * Incremental like zlib.crc32(data, value):
 *
 *     uint32_t crc = crc32_update(0, a, na);   // == zlib.crc32(a)
 *     crc = crc32_update(crc, b, nb);          // == zlib.crc32(a + b)
 */
#ifndef TSN_CRC32_H
#define TSN_CRC32_H

#include <stddef.h>
#include <stdint.h>

/** CRC-32 of `length` bytes at `data`, continuing from `crc` (0 to start). */
uint32_t crc32_update(uint32_t crc, const void *data, size_t length);

#endif /* TSN_CRC32_H */
