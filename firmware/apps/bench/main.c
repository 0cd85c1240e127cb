/**
 * @file main.c
 * @brief Benchmark app: run every layer of the linked model once, timed by SysTick.
 *
 * Output over the console UART, one record per line:
 *
 *     bench model <name> layers <n>
 *     timer overhead ticks <n>            (an empty timed region)
 *     layer <i> <op> ticks <n> stack <bytes> crc <crc32>
 *     ...
 *     total ticks <n> stack <bytes>
 *
 * and on a failing call `error <what> [<index>] status <s>` (or `error stack overflow
 * size <bytes>` when the whole stack was used). Ticks are raw SysTick ticks of
 * the timed region (the call through the descriptor included, the timer overhead
 * not subtracted); `total` is their sum. Stack figures are the deepest stack use,
 * in bytes from the stack top, while the layer ran (repainted before each) and
 * over the whole run. crc is the CRC-32 (zlib's) of the layer's output, so the
 * host checks every layer bit-exactly against the NumPy reference without
 * moving the tensors. Exit status: 0 if every call succeeded, else 1.
 *
 * Built with -DBENCH_INPUT_STAGED, the app runs the sample the model's entry file staged
 * (tsn_model_input_staging(), e.g. a real digit) instead of the pseudo-random input.
 *
 * A DRESS model runs sub-net BENCH_SUBNET (a -D at build time, default 0, the
 * densest); its `bench model` line is followed by `subnet <k> of <K>`.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "runtime.h"
#include "stack.h"
#include "timer.h"
#include "tsn_model.h"
#include "uart.h"

#ifndef BENCH_SUBNET
#define BENCH_SUBNET 0
#endif

#if defined(BENCH_INPUT_STAGED)
static void fill_input(int8_t *input, int32_t length)
{
    memcpy(input, tsn_model_input_staging(), (size_t)length);
}
#else
/* The input is pseudo-random bytes from xorshift32 (Marsaglia 2003, shifts
 * 13/17/5) with this seed, so every run and every host sees the same input. */
#define INPUT_SEED 0x2545F491UL

static uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void fill_input(int8_t *input, int32_t length)
{
    uint32_t state = INPUT_SEED;
    for (int32_t i = 0; i < length; ++i) {
        input[i] = (int8_t)(xorshift32(&state) & 0xFFU);
    }
}
#endif

static void report_error(const char *what, int32_t index, tsn_nn_status status)
{
    uart_puts("error ");
    uart_puts(what);
    if (index >= 0) {
        uart_putc(' ');
        uart_put_i32(index);
    }
    uart_puts(" status ");
    uart_put_i32((int32_t)status);
    uart_putc('\n');
}

/* Layers this app can trace; a bigger model is reported, not overrun. */
#define MAX_LAYERS 256

static runtime_layer_trace s_trace[MAX_LAYERS];

int main(void)
{
    board_init();
    timer_init();

    const tsn_model_desc *model = tsn_model();
    uart_puts("bench model ");
    uart_puts(model->name);
    uart_puts(" layers ");
    uart_put_i32(model->num_layers);
    uart_putc('\n');
    if (model->num_layers > MAX_LAYERS) {
        uart_puts("error layers ");
        uart_put_i32(model->num_layers);
        uart_puts(" above the bench limit\n");
        return BOARD_EXIT_FAILURE;
    }

    tsn_nn_status status = model->init();
    if (status != TSN_NN_SUCCESS) {
        report_error("init", -1, status);
        return BOARD_EXIT_FAILURE;
    }
    if (model->set_subnet != 0) {
        status = model->set_subnet(BENCH_SUBNET);
        if (status != TSN_NN_SUCCESS) {
            report_error("subnet", BENCH_SUBNET, status);
            return BOARD_EXIT_FAILURE;
        }
        uart_puts("subnet ");
        uart_put_i32(BENCH_SUBNET);
        uart_puts(" of ");
        uart_put_i32(model->num_subnets);
        uart_putc('\n');
    }
    fill_input(model->input(), model->input_bytes);

    uart_puts("timer overhead ticks ");
    uart_put_u64(timer_overhead());
    uart_putc('\n');

    /* Everything so far (startup, init, printing) against the reset-time paint. */
    uint32_t stack_max = stack_high_water_bytes();
    int32_t layers_run = 0;
    status = runtime_invoke_traced(model, s_trace, &layers_run);

    uint64_t total_ticks = 0;
    for (int32_t i = 0; i < layers_run; ++i) {
        const char *op = model->layers[i].op;
        total_ticks += s_trace[i].ticks;
        if (s_trace[i].stack_bytes > stack_max) {
            stack_max = s_trace[i].stack_bytes;
        }
        uart_puts("layer ");
        uart_put_i32(i);
        uart_putc(' ');
        uart_puts(op != 0 ? op : "?");
        uart_puts(" ticks ");
        uart_put_u64(s_trace[i].ticks);
        uart_puts(" stack ");
        uart_put_u64(s_trace[i].stack_bytes);
        uart_puts(" crc ");
        uart_put_u64(s_trace[i].crc32);
        uart_putc('\n');
    }
    int failed = 0;
    if (status != TSN_NN_SUCCESS) {
        report_error("layer", layers_run - 1, status);
        failed = 1;
    }
    if (stack_max >= stack_size_bytes()) {
        /* Every painted word was overwritten: the stack (probably) overflowed. */
        uart_puts("error stack overflow size ");
        uart_put_u64(stack_size_bytes());
        uart_putc('\n');
        failed = 1;
    }
    uart_puts("total ticks ");
    uart_put_u64(total_ticks);
    uart_puts(" stack ");
    uart_put_u64(stack_max);
    uart_putc('\n');
    return failed ? BOARD_EXIT_FAILURE : BOARD_EXIT_SUCCESS;
}
