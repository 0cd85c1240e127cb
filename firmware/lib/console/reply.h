/**
 * @file reply.h
 * @brief Reply lines of the DUT protocol: `m-...` messages, `e-[...]` errors, each
 *        ending "\r\n" as the MLPerf Tiny runner expects.
 */
#ifndef TSN_REPLY_H
#define TSN_REPLY_H

#include <stdint.h>

/** Start a message line: writes "m-" and `text`. Finish it with reply_end(). */
void reply_begin(const char *text);

/** End the current line. */
void reply_end(void);

/** A whole message line "m-<text>". */
void reply_line(const char *text);

/** A whole error line "e-[<text>]". */
void reply_error(const char *text);

/** The line that ends every command's reply: "m-ready". */
void reply_ready(void);

/** Write ",<name>=<value>": one field of a `key=value` reply. */
void reply_put_field(const char *name, uint64_t value);

/** The fields every info reply ends with: stack_bytes, timer, timer_hz, timer_overhead. */
void reply_put_stack_timer_fields(uint64_t timer_overhead);

/** Write a real number with three decimals (the EEMBC results format). */
void reply_put_fixed3(float value);

#endif /* TSN_REPLY_H */
