/* Unit tests of common/log.c: levels, filtering and the line format. */

#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static FILE *tmp;
static int saved_stderr = -1;
static char out[16384];

/* Sends stderr to a temp file until read_log(). */
static void capture(void) {
    tmp = tmpfile();
    cr_assert_not_null(tmp);
    saved_stderr = dup(2);
    cr_assert(saved_stderr >= 0);
    cr_assert_eq(dup2(fileno(tmp), 2), 2);
}

static const char *read_log(void) {
    size_t n;
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(tmp);
    n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

Test(log, parse_level) {
    jq_log_level_t l = JQ_LOG_ERROR;
    cr_expect_eq(jq_log_parse_level("debug", &l), 0);
    cr_expect_eq(l, JQ_LOG_DEBUG);
    cr_expect_eq(jq_log_parse_level("info", &l), 0);
    cr_expect_eq(l, JQ_LOG_INFO);
    cr_expect_eq(jq_log_parse_level("warn", &l), 0);
    cr_expect_eq(l, JQ_LOG_WARN);
    cr_expect_eq(jq_log_parse_level("error", &l), 0);
    cr_expect_eq(l, JQ_LOG_ERROR);
    cr_expect_eq(jq_log_parse_level("WARN", &l), 0);
    cr_expect_eq(l, JQ_LOG_WARN);
    cr_expect_eq(jq_log_parse_level("loud", &l), -1);
    cr_expect_eq(jq_log_parse_level("", &l), -1);
    cr_expect_eq(jq_log_parse_level(NULL, &l), -1);
    cr_expect_eq(l, JQ_LOG_WARN, "a failed parse leaves *out alone");
}

Test(log, default_level_is_info) {
    cr_expect_eq(jq_log_get_level(), JQ_LOG_INFO);
    jq_log_set_level(JQ_LOG_ERROR);
    cr_expect_eq(jq_log_get_level(), JQ_LOG_ERROR);
}

Test(log, line_format) {
    char want_pid[32];
    regex_t re;
    const char *s;

    jq_log_set_role("worker");
    capture();
    jq_info("hello %s %d", "world", 42);
    s = read_log();

    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                         "\\.[0-9]{3}Z pid=[0-9]+ worker INFO hello world 42\n$",
                         REG_EXTENDED),
                 0);
    cr_expect_eq(regexec(&re, s, 0, NULL, 0), 0, "line: '%s'", s);
    regfree(&re);
    snprintf(want_pid, sizeof(want_pid), " pid=%ld ", (long)getpid());
    cr_expect(strstr(s, want_pid) != NULL, "%s", s);
}

Test(log, level_names) {
    jq_log_set_role("master");
    jq_log_set_level(JQ_LOG_DEBUG);
    capture();
    jq_debug("d");
    jq_info("i");
    jq_warn("w");
    jq_error("e");
    const char *s = read_log();
    cr_expect_eq(count_lines(s), 4, "%s", s);
    cr_expect(strstr(s, " master DEBUG d\n") != NULL, "%s", s);
    cr_expect(strstr(s, " master INFO i\n") != NULL, "%s", s);
    cr_expect(strstr(s, " master WARN w\n") != NULL, "%s", s);
    cr_expect(strstr(s, " master ERROR e\n") != NULL, "%s", s);
}

Test(log, filters_below_level) {
    jq_log_set_level(JQ_LOG_WARN);
    capture();
    jq_debug("hidden debug");
    jq_info("hidden info");
    jq_warn("shown warn");
    jq_error("shown error");
    const char *s = read_log();
    cr_expect_eq(count_lines(s), 2, "%s", s);
    cr_expect_null(strstr(s, "hidden"), "%s", s);
    cr_expect(strstr(s, "WARN shown warn") != NULL, "%s", s);
    cr_expect(strstr(s, "ERROR shown error") != NULL, "%s", s);
}

Test(log, newlines_stay_on_one_line) {
    capture();
    jq_error("redis said: %s", "ERR one\ntwo\r\n");
    const char *s = read_log();
    cr_expect_eq(count_lines(s), 1, "%s", s);
    cr_expect(strstr(s, "redis said: ERR one two  \n") != NULL, "%s", s);
}

Test(log, long_message_is_cut_not_split) {
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    capture();
    jq_info("%s", big);
    const char *s = read_log();
    size_t n = strlen(s);
    cr_expect_eq(count_lines(s), 1);
    cr_expect(n > 1000 && n <= 4096, "%zu", n);
    cr_expect(n >= 4 && memcmp(s + n - 4, "...\n", 4) == 0, "%s", s + n - 10);
}

Test(log, default_role) {
    capture();
    jq_info("x");
    const char *s = read_log();
    cr_expect(strstr(s, " jobq INFO x\n") != NULL, "%s", s);
}
