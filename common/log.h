#ifndef JQ_LOG_H
#define JQ_LOG_H

/* Logging to stderr, one line per call:
 *   2026-11-26T19:40:01.123Z pid=1234 worker INFO message
 * The role ("master", "worker", "jobq") is set once per process. Lines are
 * written with a single write(2) so that lines of several processes sharing
 * one stderr never interleave. Thread-safe. */

#include <stdarg.h>

typedef enum {
    JQ_LOG_DEBUG = 0,
    JQ_LOG_INFO = 1,
    JQ_LOG_WARN = 2,
    JQ_LOG_ERROR = 3
} jq_log_level_t;

/* Sets the process role shown on every line; `role` must outlive the process
 * (a string literal). */
void jq_log_set_role(const char *role);
void jq_log_set_level(jq_log_level_t level);
jq_log_level_t jq_log_get_level(void);

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 if unknown. */
int jq_log_parse_level(const char *s, jq_log_level_t *out);

void jq_log(jq_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jq_logv(jq_log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define jq_debug(...) jq_log(JQ_LOG_DEBUG, __VA_ARGS__)
#define jq_info(...) jq_log(JQ_LOG_INFO, __VA_ARGS__)
#define jq_warn(...) jq_log(JQ_LOG_WARN, __VA_ARGS__)
#define jq_error(...) jq_log(JQ_LOG_ERROR, __VA_ARGS__)

#endif
