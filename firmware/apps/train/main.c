/**
 * @file main.c
 * @brief Training app: on-device training of the linked model, driven over the
 *        console UART. Commands and replies: firmware/PROTOCOL.md section 5.
 */
#include <stddef.h>

#include "board.h"
#include "console.h"
#include "timer.h"
#include "train.h"

static const console_command s_commands[] = {
    {"trn-info", train_cmd_info, "trn-info: model, arithmetic, memory and timer facts"},
    {"trn-init", train_cmd_init, "trn-init SEED: parameters to their start values, the rounding stream seeded"},
    {"trn-lr", train_cmd_lr, "trn-lr Q: learning rate, Q16"},
    {"trn-sample", train_cmd_sample, "trn-sample LABEL EXP CRC: announce a sample (CRC-32 of the record, hex)"},
    {"trn-data", train_cmd_data, "trn-data <hex>: the announced sample's bytes"},
    {"trn-step", train_cmd_step, "trn-step: one training step on the sample, if its CRC holds"},
    {"trn-state", train_cmd_state, "trn-state: the trainable state in hex"},
    {"tsn-sync", console_cmd_sync, "tsn-sync TOKEN: echo TOKEN (hosts find the end of stale replies)"},
    {"tsn-boot", console_cmd_boot, "tsn-boot: reset into the bootloader"},
};

static train_state s_state;

int main(void)
{
    board_init();
    timer_init();
    s_state.timer_overhead = timer_overhead();
    train_model_init(0U);
    console_run(s_commands, sizeof(s_commands) / sizeof(s_commands[0]), &s_state, NULL);
}
