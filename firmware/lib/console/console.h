/**
 * @file console.h
 * @brief The command console of the serial apps: `%`-terminated text commands
 *        from the console UART, each answered by reply lines and `m-ready`.
 *        Protocol: firmware/PROTOCOL.md section 4.
 *
 * An app lists its commands in a table and hands it to console_run(), which
 * never returns. Shared by the DUT app and the training app.
 */
#ifndef TSN_CONSOLE_H
#define TSN_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

/** Longest command, '%' excluded (EEMBC's limit). */
#define CONSOLE_MAX_COMMAND 80

/** A command handler: `context` is the app's state, `args` the text after the command word. */
typedef void (*console_handler)(void *context, const char *args);

typedef struct {
    const char *word; /**< the command word, matched up to a space or the end */
    console_handler handler;
    const char *help; /**< one line for `help` */
} console_command;

/**
 * Serve commands forever. If `init_error` is not NULL the app could not start:
 * every non-empty command is answered with that error instead of running.
 */
void console_run(const console_command *commands, size_t count, void *context, const char *init_error)
    __attribute__((noreturn));

/** Parse a decimal number at *text (skipping spaces), advancing *text past it.
 *  Returns 0 and stores the value, or -1 if there is none or it exceeds max. */
int console_parse_u32(const char **text, uint32_t max, uint32_t *value);

/** The same for an optionally negative number with |value| <= max_magnitude. */
int console_parse_i32(const char **text, uint32_t max_magnitude, int32_t *value);

/** Parse exactly `digits` hex digits at *text (skipping spaces). Returns 0 or -1. */
int console_parse_hex32(const char **text, int digits, uint32_t *value);

/** Non-zero if only spaces remain at text. */
int console_at_end(const char *text);

/**
 * Decode a string of hex digit pairs into at most `room` bytes at `out`.
 * Checks everything before storing anything; on failure replies with an error
 * line and returns -1, else returns the byte count.
 */
int32_t console_decode_hex(const char *hex, uint8_t *out, int32_t room);

/** `tsn-sync TOKEN`: echo the token (hosts find the end of stale replies with it). */
void console_cmd_sync(void *context, const char *args);

/** `tsn-boot`: answer, then reset into the bootloader. */
void console_cmd_boot(void *context, const char *args);

#endif /* TSN_CONSOLE_H */
