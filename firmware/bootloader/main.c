/**
 * @file main.c
 * @brief The serial bootloader: boot sequence (PROTOCOL.md section 2) and request loop.
 *
 * 1. Hand-off word BOOT (an application asked for us): clear it, stay.
 * 2. A valid record whose image CRC checks: give the host 200 ms (board time)
 *    to send a valid SYNC; if one comes, stay, else start the application.
 * 3. Nothing bootable: stay.
 *
 * Staying means answering requests forever; the only way out is a BOOT request
 * (or a reset). The bootloader never sends anything unsolicited.
 */
#include <stdint.h>

#include "board.h"
#include "bootctl.h"
#include "commands.h"
#include "frame.h"
#include "jump.h"
#include "protocol.h"
#include "record.h"
#include "slip.h"
#include "timer.h"

/** How long a bootable board listens for SYNC before starting the application. */
#define BOOT_WINDOW_MS 200U
#define MS_PER_SECOND  1000U

static uint8_t s_body[FRAME_MAX_BODY];
static slip_decoder s_decoder;

/** Feed one received byte; 1 and `request` filled when it completed a checked request. */
static int receive(uint8_t byte, frame_request *request, int *bad_frame)
{
    const size_t length = slip_feed(&s_decoder, byte);
    if (length == 0U) {
        return 0;
    }
    if (!frame_parse(s_body, length, request)) {
        *bad_frame = 1;
        return 0;
    }
    return 1;
}

/** Listen for a valid SYNC for BOOT_WINDOW_MS; answer it and return 1, or 0 on timeout.
 *  Anything else arriving meanwhile is ignored: the board has not decided to stay. */
static int sync_within_window(void)
{
    const uint64_t window = (uint64_t)TIMER_TICK_HZ * BOOT_WINDOW_MS / MS_PER_SECOND;
    const uint64_t start = timer_now();
    while (timer_now() - start < window) {
        if (!board_uart_rx_ready()) {
            continue;
        }
        frame_request request;
        int bad_frame = 0;
        if (receive(board_uart_getc(), &request, &bad_frame) && request.code == CMD_SYNC) {
            (void)commands_handle(&request);
            return 1;
        }
    }
    return 0;
}

static void start_app(void)
{
    const uint32_t app_base = record_app_base();
    if (jump_vectors_plausible(app_base)) {
        jump_to_app(app_base);
    }
    /* A verified image with a nonsense vector table: stay and wait for a new one. */
}

int main(void)
{
    board_init();
    timer_init();
    commands_init();
    slip_init(&s_decoder, s_body, sizeof(s_body));

    if (!bootctl_take_request() && record_image_bootable() && !sync_within_window()) {
        start_app();
    }

    for (;;) {
        frame_request request;
        int bad_frame = 0;
        if (receive(board_uart_getc(), &request, &bad_frame)) {
            if (commands_handle(&request) == COMMANDS_START_APP) {
                board_uart_flush();
                jump_to_app(record_app_base());
            }
        } else if (bad_frame) {
            frame_send_bad_frame();
        }
    }
}
