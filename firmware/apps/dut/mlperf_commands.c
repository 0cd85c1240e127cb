/**
 * @file mlperf_commands.c
 * @brief The MLPerf Tiny (EEMBC ULPMark-ML) DUT commands, as its runner drives them.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "dut.h"
#include "reply.h"
#include "timer.h"
#include "uart.h"

/* Bounds that keep a command's arguments sane; a timed batch of 2^20 runs is already hours. */
#define MAX_INFER_RUNS (1UL << 20)
#define MICROSECONDS_PER_SECOND 1000000ULL

void dut_cmd_name(void *context, const char *args)
{
    (void)context;
    (void)args;
    reply_line("name-dut-[tinysyn-" BOARD_NAME "]");
}

void dut_cmd_profile(void *context, const char *args)
{
    dut_state *state = context;
    (void)args;
    reply_line("profile-[ULPMark-ML]");
    reply_begin("model-[");
    uart_puts(state->model->name);
    uart_putc(']');
    reply_end();
}

static void db_load(dut_state *state, const char *args)
{
    uint32_t count = 0;
    if (console_parse_u32(&args, UINT32_MAX, &count) != 0 || !console_at_end(args)) {
        reply_error("db load needs a byte count");
        return;
    }
    if (count != (uint32_t)state->model->input_bytes) {
        uart_puts("e-[Expected ");
        uart_put_i32(state->model->input_bytes);
        uart_puts(" bytes, the model's input size]\r\n");
        return;
    }
    state->load_expected = (int32_t)count;
    state->load_received = 0;
    reply_begin("[Expecting ");
    uart_put_u64(count);
    uart_puts(" bytes]");
    reply_end();
}

/* `db <hex>`: append bytes to the input tensor. The whole chunk is checked before
 * any byte is stored, so a bad chunk changes nothing. */
static void db_data(dut_state *state, const char *hex)
{
    if (state->load_expected == 0) {
        reply_error("db load N first");
        return;
    }
    const int32_t count = console_decode_hex(hex, (uint8_t *)&state->staged_input[state->load_received],
                                             state->load_expected - state->load_received);
    if (count < 0) {
        return;
    }
    state->load_received += count;
    if (state->load_received == state->load_expected) {
        state->load_expected = 0;
        reply_line("load-done");
    }
}

void dut_restore_input(const dut_state *state)
{
    memcpy(state->model->input(), state->staged_input, (size_t)state->model->input_bytes);
}

/* One inference on the loaded input. */
static tsn_nn_status run_once(const dut_state *state)
{
    dut_restore_input(state);
    return state->model->invoke();
}

void dut_cmd_db(void *context, const char *args)
{
    dut_state *state = context;
    while (*args == ' ') {
        ++args;
    }
    if (strncmp(args, "load", 4) == 0 && (args[4] == ' ' || args[4] == '\0')) {
        db_load(state, args + 4);
    } else {
        db_data(state, args);
    }
}

static void print_results(const dut_state *state)
{
    const tsn_model_desc *model = state->model;
    const int8_t *output = model->output();
    reply_begin("results-[");
    for (int32_t i = 0; i < model->output_bytes; ++i) {
        if (i > 0) {
            uart_putc(',');
        }
        reply_put_fixed3((float)(output[i] - model->output_zero_point) * model->output_scale);
    }
    uart_putc(']');
    reply_end();
}

static void print_lap(void)
{
    reply_begin("lap-us-");
    uart_put_u64(timer_now() * MICROSECONDS_PER_SECOND / timer_hz());
    reply_end();
}

void dut_cmd_infer(void *context, const char *args)
{
    dut_state *state = context;
    uint32_t runs = 0;
    uint32_t warmups = 0;
    if (console_parse_u32(&args, MAX_INFER_RUNS, &runs) != 0 || runs == 0U ||
        (!console_at_end(args) && console_parse_u32(&args, MAX_INFER_RUNS, &warmups) != 0) || !console_at_end(args)) {
        reply_error("infer needs N W: 1 <= N, 0 <= W, both at most 1048576");
        return;
    }
    const tsn_model_desc *model = state->model;
    tsn_nn_status status = TSN_NN_SUCCESS;

    reply_begin("warmup-start-");
    uart_put_u64(warmups);
    reply_end();
    for (uint32_t i = 0; i < warmups && status == TSN_NN_SUCCESS; ++i) {
        status = run_once(state);
    }
    reply_line("warmup-done");

    reply_begin("infer-start-");
    uart_put_u64(runs);
    reply_end();
    print_lap();
    /* The laps include restoring the input (a copy of input_bytes) before each run. */
    for (uint32_t i = 0; i < runs && status == TSN_NN_SUCCESS; ++i) {
        status = run_once(state);
    }
    print_lap();
    /* One more run, layer by layer, for the trace: its timing, paint and CRC
     * work stays out of the laps above. */
    if (status == TSN_NN_SUCCESS) {
        dut_restore_input(state);
        status = runtime_invoke_traced(model, state->trace, &state->traced_layers);
    }
    if (status != TSN_NN_SUCCESS) {
        uart_puts("e-[Inference failed with status ");
        uart_put_i32((int32_t)status);
        uart_puts("]\r\n");
        return;
    }
    reply_line("infer-done");
    print_results(state);
}

void dut_cmd_results(void *context, const char *args)
{
    dut_state *state = context;
    (void)args;
    if (state->traced_layers == 0) {
        reply_error("No inference yet");
        return;
    }
    print_results(state);
}
