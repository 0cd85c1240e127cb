/**
 * @file uart.h
 * @brief Console I/O over the board's UART: bytes, strings, decimal numbers.
 *
 * Bytes go out unchanged ("\n" is not expanded to "\r\n") so the same channel can
 * later carry a binary protocol.
 */
#ifndef TSN_UART_H
#define TSN_UART_H

#include <stddef.h>
#include <stdint.h>

/** Blocking write of one byte. */
void uart_putc(char c);

/** Blocking read of one byte. */
char uart_getc(void);

/** Blocking write of `length` bytes. */
void uart_write(const void *data, size_t length);

/** Write a NUL-terminated string. */
void uart_puts(const char *text);

/** Write an unsigned decimal number. */
void uart_put_u64(uint64_t value);

/** Write a signed decimal number. */
void uart_put_i32(int32_t value);

/** Write `digits` lowercase hex digits of value, most significant first (1..8). */
void uart_put_hex(uint32_t value, int digits);

/** Write `length` bytes as two lowercase hex digits each, no separators. */
void uart_put_hex_bytes(const void *data, size_t length);

#endif /* TSN_UART_H */
