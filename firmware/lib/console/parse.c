/**
 * @file parse.c
 * @brief Argument parsing shared by the console commands.
 */
#include "console.h"
#include "reply.h"

#define DECIMAL_BASE 10U
#define HEX_DIGIT_BITS 4U

static const char *skip_spaces(const char *text)
{
    while (*text == ' ') {
        ++text;
    }
    return text;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int console_parse_u32(const char **text, uint32_t max, uint32_t *value)
{
    const char *p = skip_spaces(*text);
    if (*p < '0' || *p > '9') {
        return -1;
    }
    uint32_t result = 0;
    while (*p >= '0' && *p <= '9') {
        const uint32_t digit = (uint32_t)(*p - '0');
        if (digit > max || result > (max - digit) / DECIMAL_BASE) {
            return -1;
        }
        result = result * DECIMAL_BASE + digit;
        ++p;
    }
    *value = result;
    *text = p;
    return 0;
}

int console_parse_i32(const char **text, uint32_t max_magnitude, int32_t *value)
{
    const char *p = skip_spaces(*text);
    const int negative = *p == '-';
    uint32_t magnitude = 0;
    if (max_magnitude > (uint32_t)INT32_MAX) {
        return -1;
    }
    p += negative;
    if (console_parse_u32(&p, max_magnitude, &magnitude) != 0) {
        return -1;
    }
    *value = negative ? -(int32_t)magnitude : (int32_t)magnitude;
    *text = p;
    return 0;
}

int console_parse_hex32(const char **text, int digits, uint32_t *value)
{
    const char *p = skip_spaces(*text);
    uint32_t result = 0;
    for (int i = 0; i < digits; ++i) {
        const int v = hex_value(p[i]);
        if (v < 0) {
            return -1;
        }
        result = (result << HEX_DIGIT_BITS) | (uint32_t)v;
    }
    *value = result;
    *text = p + digits;
    return 0;
}

int console_at_end(const char *text)
{
    return *skip_spaces(text) == '\0';
}

int32_t console_decode_hex(const char *hex, uint8_t *out, int32_t room)
{
    hex = skip_spaces(hex);
    int32_t digits = 0;
    while (hex[digits] != '\0') {
        if (hex_value(hex[digits]) < 0) {
            reply_error("Not a hex digit");
            return -1;
        }
        ++digits;
    }
    if (digits % 2 != 0) {
        reply_error("Odd number of hex digits");
        return -1;
    }
    if (digits / 2 > room) {
        reply_error("More bytes than announced");
        return -1;
    }
    for (int32_t i = 0; i < digits / 2; ++i) {
        out[i] = (uint8_t)((hex_value(hex[2 * i]) << HEX_DIGIT_BITS) | hex_value(hex[2 * i + 1]));
    }
    return digits / 2;
}
