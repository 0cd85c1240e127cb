/**
 * @file slip.h
 * @brief SLIP framing (RFC 1055): an incremental decoder and an encoder to the UART.
 *
 * A frame is END, the escaped body, END; in the body END is sent as ESC ESC_END
 * and ESC as ESC ESC_ESC. The decoder drops empty frames, and discards (silently,
 * up to the next END) a body with any other byte after ESC or one longer than
 * its buffer. Bytes before the first END count as the start of a body, so a
 * frame whose opening END was lost is still seen (its CRC decides).
 */
#ifndef TSN_BOOT_SLIP_H
#define TSN_BOOT_SLIP_H

#include <stddef.h>
#include <stdint.h>

#define SLIP_END     0xC0U
#define SLIP_ESC     0xDBU
#define SLIP_ESC_END 0xDCU
#define SLIP_ESC_ESC 0xDDU

typedef struct {
    uint8_t *buffer;  /**< where the unescaped body collects */
    size_t capacity;  /**< longest body kept */
    size_t length;    /**< bytes of the current body so far */
    uint8_t escaped;  /**< the previous byte was ESC */
    uint8_t invalid;  /**< the current body is being discarded */
} slip_decoder;

/** Start decoding into `buffer` (bodies up to `capacity` bytes). */
void slip_init(slip_decoder *decoder, uint8_t *buffer, size_t capacity);

/**
 * Take one received byte. Returns the body length when this byte completed a
 * valid, non-empty body (then in the buffer until the next call), else 0.
 */
size_t slip_feed(slip_decoder *decoder, uint8_t byte);

/** Send `length` bytes as one frame: END, escaped body, END. */
void slip_send(const uint8_t *body, size_t length);

#endif /* TSN_BOOT_SLIP_H */
