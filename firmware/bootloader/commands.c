/**
 * @file commands.c
 * @brief Command handlers and the upload session state.
 *
 * Session: BEGIN erases the record page (the old image stops being bootable)
 * and the pages the new image covers; DATA blocks arrive in order and are
 * programmed; END checks the CRC-32 of the image as read back from flash and
 * only then writes the boot record. So at every moment either a complete,
 * verified image has a record, or there is no record at all.
 */
#include "commands.h"

#include <string.h>

#include "board.h"
#include "flash.h"
#include "jump.h"
#include "le.h"
#include "record.h"

/** The upload in progress (BEGIN .. END). */
typedef struct {
    uint8_t started;        /**< a BEGIN succeeded */
    uint8_t record_written; /**< END wrote the record for this upload */
    uint32_t image_size;
    uint32_t image_crc32;
    uint32_t next_offset;   /**< bytes of the image programmed so far */
} upload_session;

/** The last request's code and seq and the response it got (PROTOCOL.md "One request at a time"). */
typedef struct {
    uint8_t valid;
    uint8_t code;
    uint16_t seq;
    frame_response response;
} kept_response;

/** A handler's answer: a status and up to one u32 (or SYNC's block) of payload. */
typedef struct {
    uint8_t status;
    uint16_t length;
    uint8_t payload[RESPONSE_MAX_PAYLOAD];
} answer;

_Static_assert(sizeof(BOARD_NAME) <= SYNC_BOARD_NAME_BYTES, "board name too long for SYNC");

static upload_session s_session;
static kept_response s_kept;

void commands_init(void)
{
    memset(&s_session, 0, sizeof(s_session));
    memset(&s_kept, 0, sizeof(s_kept));
}

static void answer_status(answer *a, uint8_t status)
{
    a->status = status;
    a->length = 0U;
}

static void answer_u32(answer *a, uint8_t status, uint32_t value)
{
    a->status = status;
    a->length = sizeof(uint32_t);
    le_put_u32(a->payload, value);
}

static uint32_t round_up(uint32_t value, uint32_t unit)
{
    return (value + unit - 1U) / unit * unit;
}

static void do_sync(const frame_request *request, answer *a)
{
    if (request->length != 0U) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    boot_record record;
    const int record_valid = record_read(&record);
    const uint32_t fields[SYNC_WORD_FIELDS] = {
        PROTOCOL_VERSION,
        record_app_base(),
        record_app_max_bytes(),
        MAX_BLOCK_BYTES,
        flash_page_bytes(),
        (uint32_t)record_image_bootable(),
        record_valid ? record.image_size : 0U,
        record_valid ? record.image_crc32 : 0U,
    };
    uint8_t *out = a->payload;
    for (size_t i = 0; i < SYNC_WORD_FIELDS; ++i) {
        le_put_u32(out, fields[i]);
        out += sizeof(uint32_t);
    }
    memset(out, 0, SYNC_BOARD_NAME_BYTES);
    memcpy(out, BOARD_NAME, sizeof(BOARD_NAME) - 1U); /* a string literal: without its NUL */
    a->status = STATUS_OK;
    a->length = SYNC_PAYLOAD_BYTES;
}

static void do_begin(const frame_request *request, answer *a)
{
    if (request->length != BEGIN_PAYLOAD_BYTES) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    const uint32_t image_size = le_get_u32(request->payload);
    const uint32_t image_crc32 = le_get_u32(request->payload + sizeof(uint32_t));
    if (image_size == 0U || image_size > record_app_max_bytes()) {
        answer_status(a, STATUS_TOO_LARGE);
        return;
    }
    memset(&s_session, 0, sizeof(s_session));

    /* Record first: from here on the old image is no longer bootable. */
    flash_status status = flash_erase(record_page_base(), record_page_bytes());
    if (status == FLASH_OK) {
        /* Whole pages; the last DATA block's padding to 8 bytes stays inside them. */
        status = flash_erase(record_app_base(), round_up(image_size, flash_page_bytes()));
    }
    if (status != FLASH_OK) {
        answer_u32(a, STATUS_FLASH_ERROR, status);
        return;
    }
    s_session.started = 1U;
    s_session.image_size = image_size;
    s_session.image_crc32 = image_crc32;
    answer_status(a, STATUS_OK);
}

/* Program `length` image bytes at `offset`; a tail that is not a whole unit is
 * padded with 0xFF (only the block ending the image may have one). */
static flash_status program_block(uint32_t offset, const uint8_t *data, uint32_t length)
{
    const uint32_t whole = length - length % FLASH_PROGRAM_UNIT;
    const uint32_t address = record_app_base() + offset;
    flash_status status = FLASH_OK;
    if (whole > 0U) {
        status = flash_program(address, data, whole);
    }
    if (status == FLASH_OK && whole < length) {
        uint8_t tail[FLASH_PROGRAM_UNIT];
        memset(tail, FLASH_ERASED_BYTE, sizeof(tail));
        memcpy(tail, data + whole, length - whole);
        status = flash_program(address + whole, tail, sizeof(tail));
    }
    return status;
}

static void do_data(const frame_request *request, answer *a)
{
    if (request->length <= DATA_OFFSET_BYTES || request->length > DATA_OFFSET_BYTES + MAX_BLOCK_BYTES) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    if (!s_session.started) {
        answer_status(a, STATUS_NOT_STARTED);
        return;
    }
    const uint32_t offset = le_get_u32(request->payload);
    const uint32_t length = request->length - DATA_OFFSET_BYTES;
    const uint64_t end = (uint64_t)offset + length; /* no wrap-around for offsets near 2^32 */

    if (end <= s_session.next_offset) {
        /* A resend of data already written: nothing to do. */
        answer_u32(a, STATUS_OK, s_session.next_offset);
        return;
    }
    if (offset != s_session.next_offset || end > s_session.image_size) {
        answer_u32(a, STATUS_BAD_OFFSET, s_session.next_offset);
        return;
    }
    if (length % FLASH_PROGRAM_UNIT != 0U && end != s_session.image_size) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    const flash_status status = program_block(offset, request->payload + DATA_OFFSET_BYTES, length);
    if (status != FLASH_OK) {
        answer_u32(a, STATUS_FLASH_ERROR, status);
        return;
    }
    s_session.next_offset = (uint32_t)end;
    answer_u32(a, STATUS_OK, s_session.next_offset);
}

static void do_end(const frame_request *request, answer *a)
{
    if (request->length != 0U) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    if (!s_session.started) {
        answer_status(a, STATUS_NOT_STARTED);
        return;
    }
    if (s_session.next_offset < s_session.image_size) {
        answer_u32(a, STATUS_INCOMPLETE, s_session.next_offset);
        return;
    }
    const uint32_t crc = record_app_crc(0U, s_session.image_size);
    if (crc != s_session.image_crc32) {
        answer_u32(a, STATUS_VERIFY_FAILED, crc);
        return;
    }
    if (!s_session.record_written) {
        const flash_status status = record_write(s_session.image_size, s_session.image_crc32);
        if (status != FLASH_OK) {
            answer_u32(a, STATUS_FLASH_ERROR, status);
            return;
        }
        s_session.record_written = 1U;
    }
    answer_u32(a, STATUS_OK, crc);
}

static void do_crc(const frame_request *request, answer *a)
{
    if (request->length != CRC_PAYLOAD_BYTES) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    const uint32_t offset = le_get_u32(request->payload);
    const uint32_t length = le_get_u32(request->payload + sizeof(uint32_t));
    if ((uint64_t)offset + length > record_app_max_bytes()) {
        answer_status(a, STATUS_BAD_OFFSET);
        return;
    }
    answer_u32(a, STATUS_OK, record_app_crc(offset, length));
}

static void do_boot(const frame_request *request, answer *a)
{
    if (request->length != 0U) {
        answer_status(a, STATUS_BAD_LENGTH);
        return;
    }
    if (!record_image_bootable() || !jump_vectors_plausible(record_app_base())) {
        answer_status(a, STATUS_NO_IMAGE);
        return;
    }
    answer_status(a, STATUS_OK);
}

commands_next commands_handle(const frame_request *request)
{
    if (request->code != CMD_SYNC && s_kept.valid && s_kept.code == request->code &&
        s_kept.seq == request->seq) {
        /* The host did not get our answer and asked again: answer again, do not redo. */
        frame_send(&s_kept.response);
        return COMMANDS_CONTINUE;
    }

    answer a;
    switch (request->code) {
    case CMD_SYNC:
        do_sync(request, &a);
        break;
    case CMD_BEGIN:
        do_begin(request, &a);
        break;
    case CMD_DATA:
        do_data(request, &a);
        break;
    case CMD_END:
        do_end(request, &a);
        break;
    case CMD_CRC:
        do_crc(request, &a);
        break;
    case CMD_BOOT:
        do_boot(request, &a);
        break;
    default:
        answer_status(&a, STATUS_UNKNOWN_COMMAND);
        break;
    }

    frame_response *response = &s_kept.response;
    frame_build(response, (uint8_t)(RESPONSE_FLAG | request->code), a.status, request->seq, a.payload, a.length);
    frame_send(response);
    /* SYNC starts a host session: it is never kept, and it forgets the last answer. */
    s_kept.valid = request->code != CMD_SYNC;
    s_kept.code = request->code;
    s_kept.seq = request->seq;

    return (request->code == CMD_BOOT && a.status == STATUS_OK) ? COMMANDS_START_APP : COMMANDS_CONTINUE;
}
