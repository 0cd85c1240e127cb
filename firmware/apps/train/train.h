/**
 * @file train.h
 * @brief The training app: the host streams samples over the console UART, the
 *        board runs generated training steps on them and reports the loss; the
 *        host reads the trainable state back. Protocol: firmware/PROTOCOL.md section 5.
 */
#ifndef TSN_TRAIN_APP_H
#define TSN_TRAIN_APP_H

#include <stdint.h>

#include "train_model.h"

/** What the commands share: the sample being streamed and the last step's figures. */
typedef struct {
    int8_t sample[TRAIN_MODEL_INPUT_BYTES];
    int32_t label;
    int32_t exp;
    uint32_t announced_crc;  /**< CRC-32 the host sent with `trn-sample` */
    int32_t expected_bytes;  /**< bytes still to come for the sample; 0 when none announced */
    int32_t received_bytes;
    int32_t sample_ready;    /**< all bytes in: the next trn-step may use it */
    uint32_t steps;          /**< steps run since the last trn-init */
    uint64_t timer_overhead; /**< ticks of an empty timed region */
    uint32_t stack_max;      /**< deepest stack use of any step since trn-init */
} train_state;

void train_cmd_info(void *context, const char *args);
void train_cmd_init(void *context, const char *args);
void train_cmd_lr(void *context, const char *args);
void train_cmd_sample(void *context, const char *args);
void train_cmd_data(void *context, const char *args);
void train_cmd_step(void *context, const char *args);
void train_cmd_state(void *context, const char *args);

#endif /* TSN_TRAIN_APP_H */
