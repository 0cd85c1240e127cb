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
#include <string.h>

#include "board.h"
#include "dut.h"
#include "reply.h"
#include "timer.h"
#include "uart.h"

#define COMMAND_END '%'

typedef struct {
    const char *word; /**< the command word, matched up to a space or the end */
    dut_handler handler;
    const char *help;
} dut_command;

static const dut_command s_commands[] = {
    {"name", dut_cmd_name, "name: the DUT's name"},
    {"profile", dut_cmd_profile, "profile: benchmark profile and model"},
    {"db", dut_cmd_db, "db load N | db <hex>: load the input tensor"},
    {"infer", dut_cmd_infer, "infer N W: W warm-up runs, N timed runs"},
    {"results", dut_cmd_results, "results: the last output, dequantized"},
    {"tsn-info", dut_cmd_tsn_info, "tsn-info: model, memory and timer facts"},
    {"tsn-trace", dut_cmd_tsn_trace, "tsn-trace: per-layer ticks, stack and CRC-32"},
    {"tsn-mem", dut_cmd_tsn_mem, "tsn-mem: static RAM, arena, stack size and high-water"},
    {"tsn-out", dut_cmd_tsn_out, "tsn-out [L]: the output (or layer L's) in hex"},
    {"tsn-sync", dut_cmd_tsn_sync, "tsn-sync TOKEN: echo TOKEN (hosts find the end of stale replies)"},
    {"tsn-boot", dut_cmd_tsn_boot, "tsn-boot: reset into the bootloader"},
};

#define NUM_COMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static dut_state s_state;

static void print_help(void)
{
    for (size_t i = 0; i < NUM_COMMANDS; ++i) {
        reply_begin("[");
        uart_puts(s_commands[i].help);
        uart_putc(']');
        reply_end();
    }
}

static void dispatch(char *line)
{
    while (*line == ' ') {
        ++line;
    }
    const size_t word_length = strcspn(line, " ");
    const char *args = line + word_length;
    if (word_length == 4U && strncmp(line, "help", word_length) == 0) {
        print_help();
        return;
    }
    for (size_t i = 0; i < NUM_COMMANDS; ++i) {
        const char *word = s_commands[i].word;
        if (strlen(word) == word_length && strncmp(line, word, word_length) == 0) {
            s_commands[i].handler(&s_state, args);
            return;
        }
    }
    line[word_length] = '\0';
    uart_puts("e-[Unknown command: ");
    uart_puts(line);
    uart_puts("]\r\n");
}

int main(void)
{
    board_init();
    timer_init();

    s_state.model = tsn_model();
    s_state.staged_input = tsn_model_input_staging();
    s_state.timer_overhead = runtime_timer_overhead();
    const int too_many_layers = s_state.model->num_layers > DUT_MAX_LAYERS;
    const tsn_nn_status init_status = too_many_layers ? TSN_NN_ARG_ERROR : s_state.model->init();

    char line[DUT_MAX_COMMAND + 1];
    size_t length = 0;
    int overflow = 0;
    for (;;) {
        const char c = uart_getc();
        if (c == '\r' || c == '\n') {
            continue;
        }
        if (c != COMMAND_END) {
            if (length < DUT_MAX_COMMAND) {
                line[length++] = c;
            } else {
                overflow = 1;
            }
            continue;
        }
        line[length] = '\0';
        if (overflow) {
            reply_error("Command too long");
        } else if (init_status != TSN_NN_SUCCESS) {
            reply_error(too_many_layers ? "Model has more layers than the DUT can trace"
                                        : "Model init failed");
        } else if (length > 0U) {
            dispatch(line); /* an empty command only asks for m-ready */
        }
        reply_ready();
        length = 0;
        overflow = 0;
    }
}
