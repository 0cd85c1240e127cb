/**
 * @file frame.h
 * @brief Frame bodies: check a request's length and CRC-32, build and send responses.
 */
#ifndef TSN_BOOT_FRAME_H
#define TSN_BOOT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/** A request that passed the length and CRC checks (payload points into the body). */
typedef struct {
    uint8_t code;
    uint16_t seq;
    uint16_t length;
    const uint8_t *payload;
} frame_request;

/** The largest response body: header, SYNC's payload, CRC. */
#define FRAME_MAX_RESPONSE_BODY (FRAME_HEADER_BYTES + RESPONSE_MAX_PAYLOAD + FRAME_CRC_BYTES)

/** A response body ready to send (and to keep for a resent request). */
typedef struct {
    uint8_t body[FRAME_MAX_RESPONSE_BODY];
    uint16_t length;
} frame_response;

/**
 * Check a received body: at least a header and CRC, `length` <= FRAME_MAX_PAYLOAD
 * and matching the body size, CRC-32 over header + payload. Returns 1 and fills
 * `request` if it checks, else 0 (answer with frame_send_bad_frame()).
 */
int frame_parse(const uint8_t *body, size_t body_length, frame_request *request);

/** Build a response body: code, status, seq, payload (length bytes), CRC-32. */
void frame_build(frame_response *response, uint8_t code, uint8_t status, uint16_t seq,
                 const uint8_t *payload, uint16_t length);

/** Send a built response as a SLIP frame. */
void frame_send(const frame_response *response);

/** Answer a body that did not check: code 0xFF, BAD_FRAME, seq 0xFFFF, no payload. */
void frame_send_bad_frame(void);

#endif /* TSN_BOOT_FRAME_H */
