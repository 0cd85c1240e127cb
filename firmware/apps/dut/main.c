/**
 * @file main.c
 * @brief DUT app: reads `%`-terminated commands from the console UART and runs them
 *        on the linked model. Commands and replies: firmware/PROTOCOL.md section 4.
 *
 * Runs forever; the host ends a session by resetting the board or stopping the
 * emulator, or sends `tsn-boot%` to return to the bootloader.
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "console.h"
#include "dut.h"
#include "timer.h"

static const console_command s_commands[] = {
    {"name", dut_cmd_name, "name: the DUT's name"},
    {"profile", dut_cmd_profile, "profile: benchmark profile and model"},
    {"db", dut_cmd_db, "db load N | db <hex>: load the input tensor"},
    {"infer", dut_cmd_infer, "infer N W: W warm-up runs, N timed runs"},
    {"results", dut_cmd_results, "results: the last output, dequantized"},
    {"tsn-info", dut_cmd_tsn_info, "tsn-info: model, memory and timer facts"},
    {"tsn-trace", dut_cmd_tsn_trace, "tsn-trace: per-layer ticks, stack and CRC-32"},
    {"tsn-mem", dut_cmd_tsn_mem, "tsn-mem: static RAM, arena, stack size and high-water"},
    {"tsn-out", dut_cmd_tsn_out, "tsn-out [L]: the output (or layer L's) in hex"},
    {"tsn-subnet", dut_cmd_tsn_subnet, "tsn-subnet [K]: run DRESS sub-net K from now on (none: which runs)"},
    {"tsn-sync", console_cmd_sync, "tsn-sync TOKEN: echo TOKEN (hosts find the end of stale replies)"},
    {"tsn-boot", console_cmd_boot, "tsn-boot: reset into the bootloader"},
};

static dut_state s_state;

int main(void)
{
    board_init();
    timer_init();

    s_state.model = tsn_model();
    s_state.staged_input = tsn_model_input_staging();
    s_state.timer_overhead = timer_overhead();
    const int too_many_layers = s_state.model->num_layers > DUT_MAX_LAYERS;
    const tsn_nn_status init_status = too_many_layers ? TSN_NN_ARG_ERROR : s_state.model->init();
    const char *init_error = NULL;
    if (init_status != TSN_NN_SUCCESS) {
        init_error = too_many_layers ? "Model has more layers than the DUT can trace" : "Model init failed";
    }
    console_run(s_commands, sizeof(s_commands) / sizeof(s_commands[0]), &s_state, init_error);
}
