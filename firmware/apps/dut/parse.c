/**
 * @file parse.c
 * @brief Argument parsing shared by the DUT commands.
 */
#include "dut.h"

#define DECIMAL_BASE 10U

static const char *skip_spaces(const char *text)
{
    while (*text == ' ') {
        ++text;
    }
    return text;
}

int dut_parse_u32(const char **text, uint32_t max, uint32_t *value)
{
    const char *p = skip_spaces(*text);
    if (*p < '0' || *p > '9') {
        return -1;
    }
    uint32_t result = 0;
    while (*p >= '0' && *p <= '9') {
        const uint32_t digit = (uint32_t)(*p - '0');
        if (result > (max - digit) / DECIMAL_BASE) {
            return -1;
        }
        result = result * DECIMAL_BASE + digit;
        ++p;
    }
    *value = result;
    *text = p;
    return 0;
}

int dut_at_end(const char *text)
{
    return *skip_spaces(text) == '\0';
}
