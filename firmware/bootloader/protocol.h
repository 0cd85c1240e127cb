/**
 * @file protocol.h
 * @brief Bootloader protocol constants (firmware/PROTOCOL.md section 3).
 */
#ifndef TSN_BOOT_PROTOCOL_H
#define TSN_BOOT_PROTOCOL_H

#define PROTOCOL_VERSION 1U

/* Frame body: code, status, seq (u16), length (u16), payload, crc32 (u32). */
#define FRAME_CODE_OFFSET    0U
#define FRAME_STATUS_OFFSET  1U
#define FRAME_SEQ_OFFSET     2U
#define FRAME_LENGTH_OFFSET  4U
#define FRAME_HEADER_BYTES   6U
#define FRAME_CRC_BYTES      4U
#define FRAME_MAX_PAYLOAD    1032U
/** Longest body the SLIP decoder keeps; longer ones are discarded unanswered. */
#define FRAME_MAX_BODY       1048U

/** A response's code is the request's with this bit set. */
#define RESPONSE_FLAG        0x80U

/** Image bytes in one DATA request at most. */
#define MAX_BLOCK_BYTES      1024U

/** The answer to a body whose CRC or length does not check. */
#define BAD_FRAME_CODE       0xFFU
#define BAD_FRAME_SEQ        0xFFFFU

/** Request codes. */
enum command_code {
    CMD_SYNC = 0x01,
    CMD_BEGIN = 0x02,
    CMD_DATA = 0x03,
    CMD_END = 0x04,
    CMD_CRC = 0x05,
    CMD_BOOT = 0x06,
};

/** Response status codes. */
enum response_status {
    STATUS_OK = 0,
    STATUS_BAD_FRAME = 1,
    STATUS_UNKNOWN_COMMAND = 2,
    STATUS_BAD_LENGTH = 3,
    STATUS_TOO_LARGE = 4,
    STATUS_BAD_OFFSET = 5,
    STATUS_NOT_STARTED = 6,
    STATUS_INCOMPLETE = 7,
    STATUS_VERIFY_FAILED = 8,
    STATUS_NO_IMAGE = 9,
    STATUS_FLASH_ERROR = 10,
};

/* Request payload sizes. */
#define BEGIN_PAYLOAD_BYTES     8U  /**< u32 image_size, u32 image_crc32 */
#define DATA_OFFSET_BYTES       4U  /**< u32 offset, then the data */
#define CRC_PAYLOAD_BYTES       8U  /**< u32 offset, u32 length */

/* SYNC response payload: eight u32 fields (version, app base, app max bytes, max
 * block bytes, erase page bytes, image valid, image size, image CRC), then the
 * NUL-padded board name. */
#define SYNC_WORD_FIELDS        8U
#define SYNC_BOARD_NAME_BYTES   24U
#define SYNC_PAYLOAD_BYTES      (SYNC_WORD_FIELDS * 4U + SYNC_BOARD_NAME_BYTES)

/** The longest response payload (SYNC's). */
#define RESPONSE_MAX_PAYLOAD    SYNC_PAYLOAD_BYTES

#endif /* TSN_BOOT_PROTOCOL_H */
