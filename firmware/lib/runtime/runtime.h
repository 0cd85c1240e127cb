/**
 * @file runtime.h
 * @brief Run a linked model layer by layer with a trace: time, stack depth and
 *        output CRC-32 of every layer.
 *
 * The trace is what both the semihosted bench app and the serial DUT app report,
 * so the host can check every layer bit-exactly against the NumPy reference
 * (by CRC, without moving the tensors) and attribute time and stack to layers.
 */
#ifndef TSN_RUNTIME_H
#define TSN_RUNTIME_H

#include <stdint.h>

#include "tsn_model.h"

/** What one layer cost and produced. */
typedef struct {
    uint64_t ticks;       /**< timer ticks of the layer call (timer overhead included) */
    uint32_t stack_bytes; /**< deepest stack use while it ran, bytes below the stack top */
    uint32_t crc32;       /**< zlib CRC-32 of the layer's output tensor */
} runtime_layer_trace;

/**
 * Run every layer of `model` once on the data in its input tensor.
 *
 * The stack is repainted before each layer; only the layer call itself is
 * timed (painting, scanning and the CRC are not). `trace` must have
 * model->num_layers entries. Stops at the first layer that fails.
 *
 * @param[out] layers_run  layers that ran (the failing one included)
 * @return TSN_NN_SUCCESS, or the failing layer's status
 */
tsn_nn_status runtime_invoke_traced(const tsn_model_desc *model, runtime_layer_trace *trace,
                                    int32_t *layers_run);

#endif /* TSN_RUNTIME_H */
