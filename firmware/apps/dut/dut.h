/**
 * @file dut.h
 * @brief The DUT app: the MLPerf Tiny (EEMBC) device-under-test command set plus
 *        tinysyn's own commands, over the console UART. Protocol: firmware/PROTOCOL.md.
 */
#ifndef TSN_DUT_H
#define TSN_DUT_H

#include <stdint.h>

#include "runtime.h"
#include "tsn_model.h"

/** Longest command, '%' excluded (EEMBC's limit). */
#define DUT_MAX_COMMAND 80

/** Layers the trace can hold; a bigger model is refused at start-up. */
#define DUT_MAX_LAYERS 256

/** What commands share: the model, the input being loaded, the last trace. */
typedef struct {
    const tsn_model_desc *model;
    int8_t *staged_input;    /**< the loaded input, kept across runs (input_bytes) */
    int32_t load_expected;   /**< bytes announced by `db load N`, 0 when none */
    int32_t load_received;   /**< bytes of the input received so far */
    int32_t traced_layers;   /**< layers in `trace` (0: no inference yet) */
    uint64_t timer_overhead; /**< ticks of an empty timed region */
    runtime_layer_trace trace[DUT_MAX_LAYERS];
} dut_state;

/** A command handler: `args` is the text after the command word (may be empty). */
typedef void (*dut_handler)(dut_state *state, const char *args);

/* MLPerf Tiny commands (mlperf_commands.c). */
void dut_cmd_name(dut_state *state, const char *args);
void dut_cmd_profile(dut_state *state, const char *args);
void dut_cmd_db(dut_state *state, const char *args);
void dut_cmd_infer(dut_state *state, const char *args);
void dut_cmd_results(dut_state *state, const char *args);

/* tinysyn commands (tsn_commands.c). */
void dut_cmd_tsn_info(dut_state *state, const char *args);
void dut_cmd_tsn_trace(dut_state *state, const char *args);
void dut_cmd_tsn_mem(dut_state *state, const char *args);
void dut_cmd_tsn_out(dut_state *state, const char *args);
void dut_cmd_tsn_sync(dut_state *state, const char *args);
void dut_cmd_tsn_boot(dut_state *state, const char *args);

/** Copy the staged input into the model's input tensor, which the last run overwrote. */
void dut_restore_input(const dut_state *state);

/** Parse a decimal number at *text (skipping spaces), advancing *text past it.
 *  Returns 0 and stores the value, or -1 if there is none or it exceeds max. */
int dut_parse_u32(const char **text, uint32_t max, uint32_t *value);

/** Non-zero if only spaces remain at text. */
int dut_at_end(const char *text);

#endif /* TSN_DUT_H */
