/**
 * @file tsn_commands.c
 * @brief tinysyn's own DUT commands: what the MLPerf Tiny set lacks (model facts,
 *        per-layer trace, raw tensors, DRESS sub-net switching, return to the bootloader).
 */
#include <stdint.h>

#include "board.h"
#include "dut.h"
#include "reply.h"
#include "stack.h"
#include "timer.h"
#include "uart.h"

/* Bytes of a tensor per `m-tsn-hex-[...]` line. */
#define HEX_LINE_BYTES 64
#define CRC32_HEX_DIGITS 8

void dut_cmd_tsn_info(void *context, const char *args)
{
    dut_state *state = context;
    (void)args;
    const tsn_model_desc *model = state->model;
    reply_begin("tsn-info-[board=" BOARD_NAME ",model=");
    uart_puts(model->name);
    uart_puts(",hash=");
    uart_puts(model->hash);
    reply_put_field("layers", (uint64_t)model->num_layers);
    reply_put_field("input_bytes", (uint64_t)model->input_bytes);
    reply_put_field("output_bytes", (uint64_t)model->output_bytes);
    reply_put_field("arena_bytes", (uint64_t)model->arena_bytes);
    reply_put_field("subnets", (uint64_t)model->num_subnets);
    reply_put_field("subnet", (uint64_t)state->subnet);
    reply_put_stack_timer_fields(state->timer_overhead);
    uart_putc(']');
    reply_end();
}

/* The board's RAM size, from its memory.ld. */
extern const uint8_t __ram_size[];

/* Deepest stack use of any layer of the last traced inference (0 before the first). */
static uint32_t trace_stack_max(const dut_state *state)
{
    uint32_t stack_max = 0;
    for (int32_t i = 0; i < state->traced_layers; ++i) {
        stack_max = state->trace[i].stack_bytes > stack_max ? state->trace[i].stack_bytes : stack_max;
    }
    return stack_max;
}

void dut_cmd_tsn_mem(void *context, const char *args)
{
    dut_state *state = context;
    (void)args;
    reply_begin("tsn-mem-[static_ram_bytes=");
    uart_put_u64(static_ram_bytes());
    reply_put_field("ram_bytes", (uint64_t)(uintptr_t)__ram_size);
    reply_put_field("arena_bytes", (uint64_t)state->model->arena_bytes);
    reply_put_field("stack_bytes", stack_size_bytes());
    reply_put_field("stack_high_water_bytes", trace_stack_max(state));
    uart_putc(']');
    reply_end();
}

void dut_cmd_tsn_trace(void *context, const char *args)
{
    dut_state *state = context;
    (void)args;
    if (state->traced_layers == 0) {
        reply_error("No inference yet");
        return;
    }
    uint64_t total_ticks = 0;
    for (int32_t i = 0; i < state->traced_layers; ++i) {
        const runtime_layer_trace *layer = &state->trace[i];
        const char *op = state->model->layers[i].op;
        total_ticks += layer->ticks;
        reply_begin("tsn-layer-[");
        uart_put_i32(i);
        uart_putc(',');
        uart_puts(op != 0 ? op : "?");
        uart_putc(',');
        uart_put_u64(layer->ticks);
        uart_putc(',');
        uart_put_u64(layer->stack_bytes);
        uart_putc(',');
        uart_put_hex(layer->crc32, CRC32_HEX_DIGITS);
        uart_putc(']');
        reply_end();
    }
    reply_begin("tsn-total-[");
    uart_put_u64(total_ticks);
    uart_putc(',');
    uart_put_u64(trace_stack_max(state));
    uart_putc(']');
    reply_end();
}

void dut_cmd_tsn_out(void *context, const char *args)
{
    dut_state *state = context;
    const tsn_model_desc *model = state->model;
    int32_t layer = -1;
    if (!console_at_end(args)) {
        uint32_t index = 0;
        if (console_parse_u32(&args, (uint32_t)model->num_layers - 1U, &index) != 0 || !console_at_end(args)) {
            reply_error("tsn-out takes a layer index below the layer count");
            return;
        }
        layer = (int32_t)index;
    }
    if (layer >= 0) {
        /* Later layers reuse the arena: run up to this layer again so its output is current. */
        dut_restore_input(state);
        for (int32_t i = 0; i <= layer; ++i) {
            const tsn_nn_status status = model->invoke_layer(i);
            if (status != TSN_NN_SUCCESS) {
                uart_puts("e-[Layer ");
                uart_put_i32(i);
                uart_puts(" failed with status ");
                uart_put_i32((int32_t)status);
                uart_puts("]\r\n");
                return;
            }
        }
    }
    const int8_t *data = layer < 0 ? model->output() : model->layer_output(layer);
    const int32_t bytes = layer < 0 ? model->output_bytes : model->layers[layer].output_bytes;
    reply_begin("tsn-out-[");
    uart_put_i32(layer);
    uart_putc(',');
    uart_put_i32(bytes);
    uart_putc(']');
    reply_end();
    for (int32_t offset = 0; offset < bytes; offset += HEX_LINE_BYTES) {
        const int32_t chunk = bytes - offset < HEX_LINE_BYTES ? bytes - offset : HEX_LINE_BYTES;
        reply_begin("tsn-hex-[");
        uart_put_hex_bytes(data + offset, (size_t)chunk);
        uart_putc(']');
        reply_end();
    }
}

void dut_cmd_tsn_subnet(void *context, const char *args)
{
    dut_state *state = context;
    const tsn_model_desc *model = state->model;
    if (model->num_subnets == 0 || model->set_subnet == 0) {
        reply_error("tsn-subnet needs a DRESS model; this one is dense");
        return;
    }
    if (!console_at_end(args)) {
        uint32_t k = 0;
        if (console_parse_u32(&args, (uint32_t)model->num_subnets - 1U, &k) != 0 || !console_at_end(args)) {
            uart_puts("e-[tsn-subnet takes a sub-net index below ");
            uart_put_i32(model->num_subnets);
            uart_puts("]\r\n");
            return;
        }
        const tsn_nn_status status = model->set_subnet((int32_t)k);
        if (status != TSN_NN_SUCCESS) {
            uart_puts("e-[Sub-net switch failed with status ");
            uart_put_i32((int32_t)status);
            uart_puts("]\r\n");
            return;
        }
        state->subnet = (int32_t)k;
    }
    reply_begin("tsn-subnet-[");
    uart_put_i32(state->subnet);
    uart_putc(',');
    uart_put_i32(model->num_subnets);
    uart_putc(']');
    reply_end();
}
