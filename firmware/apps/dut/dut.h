/**
 * @file dut.h
 * @brief The DUT app: the MLPerf Tiny (EEMBC) device-under-test command set plus
 *        tinysyn's own commands, over the console UART. Protocol: firmware/PROTOCOL.md.
 */
#ifndef TSN_DUT_H
#define TSN_DUT_H

#include <stdint.h>

#include "console.h"
#include "runtime.h"
#include "tsn_model.h"

/** Layers the trace can hold; a bigger model is refused at start-up. */
#define DUT_MAX_LAYERS 256

/** What commands share: the model, the input being loaded, the last trace. */
typedef struct {
    const tsn_model_desc *model;
    int8_t *staged_input;    /**< the loaded input, kept across runs (input_bytes) */
    int32_t load_expected;   /**< bytes announced by `db load N`, 0 when none */
    int32_t load_received;   /**< bytes of the input received so far */
    int32_t traced_layers;   /**< layers in `trace` (0: no inference yet) */
    int32_t subnet;          /**< the running DRESS sub-net (0 after start-up; 0 for a dense model) */
    uint64_t timer_overhead; /**< ticks of an empty timed region */
    runtime_layer_trace trace[DUT_MAX_LAYERS];
} dut_state;

/* MLPerf Tiny commands (mlperf_commands.c). */
void dut_cmd_name(void *context, const char *args);
void dut_cmd_profile(void *context, const char *args);
void dut_cmd_db(void *context, const char *args);
void dut_cmd_infer(void *context, const char *args);
void dut_cmd_results(void *context, const char *args);

/* tinysyn commands (tsn_commands.c). */
void dut_cmd_tsn_info(void *context, const char *args);
void dut_cmd_tsn_trace(void *context, const char *args);
void dut_cmd_tsn_mem(void *context, const char *args);
void dut_cmd_tsn_out(void *context, const char *args);
void dut_cmd_tsn_subnet(void *context, const char *args);

/** Copy the staged input into the model's input tensor, which the last run overwrote. */
void dut_restore_input(const dut_state *state);

#endif /* TSN_DUT_H */
