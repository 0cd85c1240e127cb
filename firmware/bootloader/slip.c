/**
 * @file slip.c
 * @brief SLIP decoder state machine and encoder.
 */
#include "slip.h"

#include "board.h"

void slip_init(slip_decoder *decoder, uint8_t *buffer, size_t capacity)
{
    decoder->buffer = buffer;
    decoder->capacity = capacity;
    decoder->length = 0;
    decoder->escaped = 0;
    decoder->invalid = 0;
}

static void slip_restart(slip_decoder *decoder)
{
    decoder->length = 0;
    decoder->escaped = 0;
    decoder->invalid = 0;
}

size_t slip_feed(slip_decoder *decoder, uint8_t byte)
{
    if (byte == SLIP_END) {
        /* An END after ESC is an invalid escape too: that body is dropped. */
        const int complete = !decoder->invalid && !decoder->escaped;
        const size_t length = decoder->length;
        slip_restart(decoder);
        return complete ? length : 0U;
    }
    if (decoder->invalid) {
        return 0U;
    }
    if (decoder->escaped) {
        decoder->escaped = 0;
        if (byte == SLIP_ESC_END) {
            byte = SLIP_END;
        } else if (byte == SLIP_ESC_ESC) {
            byte = SLIP_ESC;
        } else {
            decoder->invalid = 1;
            return 0U;
        }
    } else if (byte == SLIP_ESC) {
        decoder->escaped = 1;
        return 0U;
    }
    if (decoder->length >= decoder->capacity) {
        decoder->invalid = 1; /* too long: drop it all, do not act on a truncated body */
        return 0U;
    }
    decoder->buffer[decoder->length++] = byte;
    return 0U;
}

void slip_send(const uint8_t *body, size_t length)
{
    board_uart_putc(SLIP_END);
    for (size_t i = 0; i < length; ++i) {
        const uint8_t byte = body[i];
        if (byte == SLIP_END) {
            board_uart_putc(SLIP_ESC);
            board_uart_putc(SLIP_ESC_END);
        } else if (byte == SLIP_ESC) {
            board_uart_putc(SLIP_ESC);
            board_uart_putc(SLIP_ESC_ESC);
        } else {
            board_uart_putc(byte);
        }
    }
    board_uart_putc(SLIP_END);
}
