/**
 * @file train_commands.c
 * @brief The training app's commands: sample streaming with a CRC, steps, state read-back.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "console.h"
#include "crc32.h"
#include "reply.h"
#include "stack.h"
#include "timer.h"
#include "train.h"
#include "uart.h"

#define CRC32_HEX_DIGITS 8
#define LOSS_HEX_DIGITS 8
/* Bytes of the state per `m-trn-hex-[...]` line. */
#define HEX_LINE_BYTES 64
/* A sample's exponent: real value = q * 2^exp; beyond this no int8 sample makes sense. */
#define MAX_SAMPLE_EXP_MAGNITUDE 64U
#define LE32_BYTES 4

static uint32_t crc_le32(uint32_t crc, int32_t value)
{
    const uint32_t v = (uint32_t)value;
    const uint8_t bytes[LE32_BYTES] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return crc32_update(crc, bytes, sizeof bytes);
}

/* CRC-32 of the whole trainable state, block after block (codegen/train/state.py). */
static uint32_t state_crc(void)
{
    const tsn_train_block *blocks = train_model_blocks();
    uint32_t crc = 0U;
    for (int32_t i = 0; i < TRAIN_MODEL_NUM_BLOCKS; ++i) {
        crc = crc32_update(crc, blocks[i].data, (size_t)blocks[i].bytes);
    }
    return crc;
}

static void discard_sample(train_state *state)
{
    state->expected_bytes = 0;
    state->received_bytes = 0;
    state->sample_ready = 0;
}

void train_cmd_info(void *context, const char *args)
{
    train_state *state = context;
    (void)args;
    reply_begin("trn-info-[board=" BOARD_NAME ",model=" TRAIN_MODEL_NAME);
    uart_puts(TRAIN_MODEL_FP32 ? ",mode=fp32" : ",mode=int8");
    reply_put_field("input_bytes", TRAIN_MODEL_INPUT_BYTES);
    reply_put_field("classes", TRAIN_MODEL_CLASSES);
    reply_put_field("arena_bytes", TRAIN_MODEL_ARENA_BYTES);
    reply_put_field("model_static_bytes", TRAIN_MODEL_STATIC_BYTES);
    reply_put_field("state_bytes", TRAIN_MODEL_STATE_BYTES);
    reply_put_field("static_ram_bytes", static_ram_bytes());
    reply_put_stack_timer_fields(state->timer_overhead);
    uart_putc(']');
    reply_end();
}

void train_cmd_init(void *context, const char *args)
{
    train_state *state = context;
    uint32_t seed = 0;
    if (console_parse_u32(&args, UINT32_MAX, &seed) != 0 || !console_at_end(args)) {
        reply_error("trn-init needs a seed (0 to 4294967295)");
        return;
    }
    train_model_init(seed);
    discard_sample(state);
    state->steps = 0;
    state->stack_max = 0;
    reply_begin("trn-init-[");
    uart_put_hex(state_crc(), CRC32_HEX_DIGITS);
    uart_putc(']');
    reply_end();
}

void train_cmd_lr(void *context, const char *args)
{
    (void)context;
    uint32_t lr_q = 0;
    if (console_parse_u32(&args, (uint32_t)INT32_MAX, &lr_q) != 0 || lr_q == 0U || !console_at_end(args)) {
        reply_error("trn-lr needs a Q16 learning rate from 1 to 2147483647");
        return;
    }
    train_model_set_lr((int32_t)lr_q);
    reply_line("trn-lr-done");
}

void train_cmd_sample(void *context, const char *args)
{
    train_state *state = context;
    uint32_t label = 0;
    int32_t exp = 0;
    uint32_t crc = 0;
    discard_sample(state);
    if (console_parse_u32(&args, TRAIN_MODEL_CLASSES - 1U, &label) != 0 ||
        console_parse_i32(&args, MAX_SAMPLE_EXP_MAGNITUDE, &exp) != 0 ||
        console_parse_hex32(&args, CRC32_HEX_DIGITS, &crc) != 0 || !console_at_end(args)) {
        reply_error("trn-sample needs LABEL (below the class count) EXP (|EXP| <= 64) CRC (8 hex digits)");
        return;
    }
    state->label = (int32_t)label;
    state->exp = exp;
    state->announced_crc = crc;
    state->expected_bytes = TRAIN_MODEL_INPUT_BYTES;
    reply_begin("[Expecting ");
    uart_put_u64(TRAIN_MODEL_INPUT_BYTES);
    uart_puts(" bytes]");
    reply_end();
}

void train_cmd_data(void *context, const char *args)
{
    train_state *state = context;
    if (state->expected_bytes == 0) {
        reply_error("trn-sample first");
        return;
    }
    const int32_t count = console_decode_hex(args, (uint8_t *)&state->sample[state->received_bytes],
                                             state->expected_bytes - state->received_bytes);
    if (count < 0) {
        discard_sample(state); /* a broken stream is never half-used */
        return;
    }
    state->received_bytes += count;
    if (state->received_bytes == state->expected_bytes) {
        state->expected_bytes = 0;
        state->sample_ready = 1;
        reply_line("trn-sample-done");
    }
}

void train_cmd_step(void *context, const char *args)
{
    train_state *state = context;
    (void)args;
    if (!state->sample_ready) {
        reply_error("No complete sample: trn-sample and trn-data first");
        return;
    }
    const uint32_t crc = crc32_update(crc_le32(crc_le32(0U, state->label), state->exp), state->sample,
                                      sizeof state->sample);
    const int crc_ok = crc == state->announced_crc;
    discard_sample(state); /* every sample trains at most once */
    if (!crc_ok) {
        uart_puts("e-[Sample CRC mismatch: received ");
        uart_put_hex(crc, CRC32_HEX_DIGITS);
        uart_puts(", announced ");
        uart_put_hex(state->announced_crc, CRC32_HEX_DIGITS);
        uart_puts("; no step ran]\r\n");
        return;
    }
    TRAIN_MODEL_LOSS_T loss = 0;
    stack_paint();
    const uint64_t start = timer_now();
    const int32_t status = train_model_step(state->sample, state->exp, state->label, &loss);
    const uint64_t end = timer_now();
    const uint32_t stack = stack_high_water_bytes();
    state->stack_max = stack > state->stack_max ? stack : state->stack_max;
    ++state->steps;
    uint32_t loss_bits = 0;
    memcpy(&loss_bits, &loss, sizeof loss_bits); /* Q16 integer or float bits: exact either way */
    reply_begin("trn-step-[");
    uart_put_u64(state->steps);
    uart_putc(',');
    uart_put_i32(status);
    uart_putc(',');
    uart_put_hex(loss_bits, LOSS_HEX_DIGITS);
    uart_putc(',');
    uart_put_i32(train_model_failed_layer());
    uart_putc(',');
    uart_put_u64(end - start);
    uart_putc(',');
    uart_put_u64(stack);
    uart_putc(',');
    uart_put_hex(state_crc(), CRC32_HEX_DIGITS);
    uart_putc(']');
    reply_end();
}

void train_cmd_state(void *context, const char *args)
{
    (void)context;
    (void)args;
    const tsn_train_block *blocks = train_model_blocks();
    reply_begin("trn-state-[");
    uart_put_i32(TRAIN_MODEL_STATE_BYTES);
    uart_putc(']');
    reply_end();
    /* Lines of up to HEX_LINE_BYTES, running across block boundaries. */
    uint8_t line[HEX_LINE_BYTES];
    int32_t fill = 0;
    for (int32_t b = 0; b < TRAIN_MODEL_NUM_BLOCKS; ++b) {
        const uint8_t *data = blocks[b].data;
        for (int32_t i = 0; i < blocks[b].bytes; ++i) {
            line[fill++] = data[i];
            if (fill == HEX_LINE_BYTES || (b == TRAIN_MODEL_NUM_BLOCKS - 1 && i == blocks[b].bytes - 1)) {
                reply_begin("trn-hex-[");
                uart_put_hex_bytes(line, (size_t)fill);
                uart_putc(']');
                reply_end();
                fill = 0;
            }
        }
    }
}
