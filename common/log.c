/* Logging to stderr, one line per call (see log.h).
 *
 * Each line is formatted into one buffer and written with one write(2): a
 * write to a pipe of at most PIPE_BUF bytes is atomic, and even longer ones to
 * a file opened O_APPEND or a terminal rarely tear, so the master's and the
 * workers' lines do not interleave on a shared stderr. No lock is needed:
 * every call works on its own stack buffer. */

#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Long enough for every line jobq writes; longer messages are cut with
 * "..." rather than split into two writes. */
#define LOG_LINE_MAX 4096

static _Atomic(const char *) log_role = "jobq";
static atomic_int log_level = JQ_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void jq_log_set_role(const char *role) { atomic_store(&log_role, role ? role : "jobq"); }

void jq_log_set_level(jq_log_level_t level) {
    if (level < JQ_LOG_DEBUG) level = JQ_LOG_DEBUG;
    if (level > JQ_LOG_ERROR) level = JQ_LOG_ERROR;
    atomic_store(&log_level, (int)level);
}

jq_log_level_t jq_log_get_level(void) { return (jq_log_level_t)atomic_load(&log_level); }

int jq_log_parse_level(const char *s, jq_log_level_t *out) {
    static const struct {
        const char *name;
        jq_log_level_t level;
    } names[] = {
        {"debug", JQ_LOG_DEBUG},  {"info", JQ_LOG_INFO},   {"warn", JQ_LOG_WARN},
        {"warning", JQ_LOG_WARN}, {"error", JQ_LOG_ERROR},
    };
    if (!s) return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

/* Writes the whole buffer, retrying on EINTR and short writes; there is
 * nobody to report a failure to, so it is dropped. */
static void write_all(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

void jq_logv(jq_log_level_t level, const char *fmt, va_list ap) {
    char line[LOG_LINE_MAX];
    struct timeval tv;
    struct tm tm;
    size_t len, start;
    int n;

    if ((int)level < atomic_load(&log_level)) return;
    if (level < JQ_LOG_DEBUG || level > JQ_LOG_ERROR) level = JQ_LOG_ERROR;

    /* errno is part of what a caller may want to log after us. */
    int saved_errno = errno;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ pid=%ld %s %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), (long)getpid(), atomic_load(&log_role),
                 level_names[level]);
    if (n < 0) n = 0;
    start = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;

    /* Leave room for the newline. */
    n = vsnprintf(line + start, sizeof(line) - start - 1, fmt, ap);
    if (n < 0) n = 0;
    len = start + (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
        memcpy(line + len - 3, "...", 3);
    }

    /* One call, one line: a message with newlines in it (an error text from
     * Redis, a payload) must not look like several log lines. */
    for (size_t i = start; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    }
    line[len++] = '\n';
    write_all(STDERR_FILENO, line, len);
    errno = saved_errno;
}

void jq_log(jq_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jq_logv(level, fmt, ap);
    va_end(ap);
}
