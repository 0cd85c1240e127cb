/**
 * @file uart.c
 * @brief Console I/O on top of the board's byte-level UART driver.
 */
#include "uart.h"

#include "board.h"

/* Enough decimal digits for UINT64_MAX (18446744073709551615). */
#define U64_MAX_DIGITS 20

void uart_putc(char c)
{
    board_uart_putc((uint8_t)c);
}

char uart_getc(void)
{
    return (char)board_uart_getc();
}

void uart_write(const void *data, size_t length)
{
    const uint8_t *bytes = (const uint8_t *)data;
    for (size_t i = 0; i < length; ++i) {
        board_uart_putc(bytes[i]);
    }
}

void uart_puts(const char *text)
{
    while (*text != '\0') {
        board_uart_putc((uint8_t)*text++);
    }
}

void uart_put_u64(uint64_t value)
{
    char digits[U64_MAX_DIGITS];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + (value % 10U));
        value /= 10U;
    } while (value != 0U);
    while (count > 0U) {
        uart_putc(digits[--count]);
    }
}

void uart_put_i32(int32_t value)
{
    if (value < 0) {
        uart_putc('-');
        /* Negate in 64 bits: -INT32_MIN does not fit an int32_t. */
        uart_put_u64((uint64_t)(-(int64_t)value));
    } else {
        uart_put_u64((uint64_t)value);
    }
}

#define HEX_BITS_PER_DIGIT 4U
#define HEX_DIGIT_MASK     0xFU

void uart_put_hex(uint32_t value, int digits)
{
    static const char hex_digits[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) {
        uart_putc(hex_digits[(value >> ((uint32_t)i * HEX_BITS_PER_DIGIT)) & HEX_DIGIT_MASK]);
    }
}

void uart_put_hex_bytes(const void *data, size_t length)
{
    const uint8_t *bytes = (const uint8_t *)data;
    for (size_t i = 0; i < length; ++i) {
        uart_put_hex(bytes[i], 2);
    }
}
