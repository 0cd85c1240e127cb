/**
 * @file reply.c
 * @brief DUT protocol reply lines.
 */
#include "reply.h"

#include "stack.h"
#include "timer.h"
#include "uart.h"

/* Three decimals: values are scaled by 10^3 and rounded half away from zero. */
#define FIXED3_SCALE 1000.0f
#define ROUND_HALF   0.5f

void reply_begin(const char *text)
{
    uart_puts("m-");
    uart_puts(text);
}

void reply_end(void)
{
    uart_puts("\r\n");
}

void reply_line(const char *text)
{
    reply_begin(text);
    reply_end();
}

void reply_error(const char *text)
{
    uart_puts("e-[");
    uart_puts(text);
    uart_puts("]\r\n");
}

void reply_ready(void)
{
    reply_line("ready");
}

void reply_put_field(const char *name, uint64_t value)
{
    uart_putc(',');
    uart_puts(name);
    uart_putc('=');
    uart_put_u64(value);
}

void reply_put_stack_timer_fields(uint64_t timer_overhead)
{
    reply_put_field("stack_bytes", stack_size_bytes());
    uart_puts(",timer=");
    uart_puts(timer_kind());
    reply_put_field("timer_hz", timer_hz());
    reply_put_field("timer_overhead", timer_overhead);
}

void reply_put_fixed3(float value)
{
    if (value < 0.0f) {
        uart_putc('-');
        value = -value;
    }
    const uint64_t thousandths = (uint64_t)(value * FIXED3_SCALE + ROUND_HALF);
    uart_put_u64(thousandths / 1000U);
    uart_putc('.');
    const uint32_t frac = (uint32_t)(thousandths % 1000U);
    uart_putc((char)('0' + frac / 100U));
    uart_putc((char)('0' + (frac / 10U) % 10U));
    uart_putc((char)('0' + frac % 10U));
}
