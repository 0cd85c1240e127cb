/**
 * @file runtime.c
 * @brief Traced layer-by-layer invocation of the linked model.
 */
#include "runtime.h"

#include "crc32.h"
#include "stack.h"
#include "timer.h"

tsn_nn_status runtime_invoke_traced(const tsn_model_desc *model, runtime_layer_trace *trace,
                                    int32_t *layers_run)
{
    tsn_nn_status status = TSN_NN_SUCCESS;
    int32_t i = 0;
    while (i < model->num_layers && status == TSN_NN_SUCCESS) {
        stack_paint();
        const uint64_t start = timer_now();
        status = model->invoke_layer(i);
        const uint64_t end = timer_now();
        trace[i].ticks = end - start;
        trace[i].stack_bytes = stack_high_water_bytes();
        trace[i].crc32 = crc32_update(0U, model->layer_output(i), (size_t)model->layers[i].output_bytes);
        ++i;
    }
    *layers_run = i;
    return status;
}
