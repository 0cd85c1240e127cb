/**
 * @file console.c
 * @brief The command loop: read a command up to '%', find its handler, answer m-ready.
 */
#include "console.h"

#include <string.h>

#include "board.h"
#include "bootctl.h"
#include "reply.h"
#include "uart.h"

#define COMMAND_END '%'

static void print_help(const console_command *commands, size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        reply_begin("[");
        uart_puts(commands[i].help);
        uart_putc(']');
        reply_end();
    }
}

static void dispatch(const console_command *commands, size_t count, void *context, char *line)
{
    while (*line == ' ') {
        ++line;
    }
    const size_t word_length = strcspn(line, " ");
    const char *args = line + word_length;
    if (word_length == 4U && strncmp(line, "help", word_length) == 0) {
        print_help(commands, count);
        return;
    }
    for (size_t i = 0; i < count; ++i) {
        const char *word = commands[i].word;
        if (strlen(word) == word_length && strncmp(line, word, word_length) == 0) {
            commands[i].handler(context, args);
            return;
        }
    }
    line[word_length] = '\0';
    uart_puts("e-[Unknown command: ");
    uart_puts(line);
    uart_puts("]\r\n");
}

void console_run(const console_command *commands, size_t count, void *context, const char *init_error)
{
    char line[CONSOLE_MAX_COMMAND + 1];
    size_t length = 0;
    int overflow = 0;
    for (;;) {
        const char c = uart_getc();
        if (c == '\r' || c == '\n') {
            continue;
        }
        if (c != COMMAND_END) {
            if (length < CONSOLE_MAX_COMMAND) {
                line[length++] = c;
            } else {
                overflow = 1;
            }
            continue;
        }
        line[length] = '\0';
        if (overflow) {
            reply_error("Command too long");
        } else if (init_error != NULL && length > 0U) {
            reply_error(init_error);
        } else if (length > 0U) {
            dispatch(commands, count, context, line); /* an empty command only asks for m-ready */
        }
        reply_ready();
        length = 0;
        overflow = 0;
    }
}

void console_cmd_sync(void *context, const char *args)
{
    (void)context;
    while (*args == ' ') {
        ++args;
    }
    reply_begin("tsn-sync-[");
    uart_puts(args);
    uart_putc(']');
    reply_end();
}

void console_cmd_boot(void *context, const char *args)
{
    (void)context;
    (void)args;
    reply_line("tsn-boot");
    reply_ready();
    board_uart_flush();
    bootctl_enter_bootloader();
}
