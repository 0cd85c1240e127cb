/**
 * @file frame.c
 * @brief Request checks and response building for the bootloader protocol.
 */
#include "frame.h"

#include <string.h>

#include "crc32.h"
#include "le.h"
#include "slip.h"

int frame_parse(const uint8_t *body, size_t body_length, frame_request *request)
{
    if (body_length < FRAME_HEADER_BYTES + FRAME_CRC_BYTES) {
        return 0;
    }
    const uint16_t length = le_get_u16(body + FRAME_LENGTH_OFFSET);
    if (length > FRAME_MAX_PAYLOAD || body_length != FRAME_HEADER_BYTES + (size_t)length + FRAME_CRC_BYTES) {
        return 0;
    }
    const size_t checked = FRAME_HEADER_BYTES + length;
    if (crc32_update(0U, body, checked) != le_get_u32(body + checked)) {
        return 0;
    }
    request->code = body[FRAME_CODE_OFFSET];
    request->seq = le_get_u16(body + FRAME_SEQ_OFFSET);
    request->length = length;
    request->payload = body + FRAME_HEADER_BYTES;
    return 1;
}

void frame_build(frame_response *response, uint8_t code, uint8_t status, uint16_t seq,
                 const uint8_t *payload, uint16_t length)
{
    if (length > RESPONSE_MAX_PAYLOAD) {
        length = RESPONSE_MAX_PAYLOAD; /* not reached: every caller's payload fits */
    }
    uint8_t *body = response->body;
    body[FRAME_CODE_OFFSET] = code;
    body[FRAME_STATUS_OFFSET] = status;
    le_put_u16(body + FRAME_SEQ_OFFSET, seq);
    le_put_u16(body + FRAME_LENGTH_OFFSET, length);
    if (length > 0U) {
        memcpy(body + FRAME_HEADER_BYTES, payload, length);
    }
    const size_t checked = FRAME_HEADER_BYTES + length;
    le_put_u32(body + checked, crc32_update(0U, body, checked));
    response->length = (uint16_t)(checked + FRAME_CRC_BYTES);
}

void frame_send(const frame_response *response)
{
    slip_send(response->body, response->length);
}

void frame_send_bad_frame(void)
{
    frame_response response;
    frame_build(&response, BAD_FRAME_CODE, STATUS_BAD_FRAME, BAD_FRAME_SEQ, NULL, 0U);
    frame_send(&response);
}
