/**
 * @file commands.h
 * @brief The bootloader's commands (SYNC, BEGIN, DATA, END, CRC, BOOT) and the
 *        upload session they drive, with the kept-response rule for resends.
 */
#ifndef TSN_BOOT_COMMANDS_H
#define TSN_BOOT_COMMANDS_H

#include "frame.h"

/** What the main loop does after a request was answered. */
typedef enum {
    COMMANDS_CONTINUE = 0,  /**< keep serving requests */
    COMMANDS_START_APP = 1, /**< BOOT succeeded: start the application now */
} commands_next;

/** Forget any upload session and kept response. */
void commands_init(void);

/**
 * Answer one request that passed the frame checks. A request with the code and
 * seq of the last one (SYNC excepted) gets the kept response again and is not
 * executed a second time.
 */
commands_next commands_handle(const frame_request *request);

#endif /* TSN_BOOT_COMMANDS_H */
