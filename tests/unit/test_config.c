/* Unit tests of common/config.c: the options table. */

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

typedef struct opts {
    char url[128];
    char prefix[16];
    long long workers;
    long long threads;
    long long max_payload;
    int verbose;
    char tags[32];
} opts_t;

static const jq_opt_t table[] = {
    {"url", "T_URL", JQ_OPT_STR, "redis://127.0.0.1:6379", 0, 0, offsetof(opts_t, url),
     sizeof(((opts_t *)0)->url), "Redis URL"},
    {"prefix", "T_PREFIX", JQ_OPT_STR, "jobq", 0, 0, offsetof(opts_t, prefix),
     sizeof(((opts_t *)0)->prefix), "key prefix"},
    {"workers", "T_WORKERS", JQ_OPT_INT, "2", 1, 64, offsetof(opts_t, workers), 0,
     "worker processes"},
    {"threads", "T_THREADS", JQ_OPT_AUTO, "auto", 1, 256, offsetof(opts_t, threads), 0,
     "CPU threads per worker"},
    {"max-payload", "T_MAX_PAYLOAD", JQ_OPT_BYTES, "64M", 1, 1073741824,
     offsetof(opts_t, max_payload), 0, "largest payload"},
    {"verbose", "T_VERBOSE", JQ_OPT_BOOL, "0", 0, 0, offsetof(opts_t, verbose), 0, "log more"},
    {"tag", "T_TAGS", JQ_OPT_LIST, "", 0, 0, offsetof(opts_t, tags), sizeof(((opts_t *)0)->tags),
     "a tag (repeatable)"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL},
};

/* Parses a NULL-terminated argument list (argv[0] is a program name). */
static int parse(opts_t *o, int *argi, char *err, const char **args) {
    char *argv[16];
    int argc = 0;
    argv[argc++] = "prog";
    while (*args) argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    *argi = 1;
    memset(o, 0x55, sizeof(*o));
    return jq_opts_parse(table, o, argc, argv, argi, err, 256);
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

Test(config, defaults) {
    opts_t o;
    int argi;
    char err[256];
    cr_assert_eq(parse(&o, &argi, err, (const char *[]){NULL}), 0, "%s", err);
    cr_expect_str_eq(o.url, "redis://127.0.0.1:6379");
    cr_expect_str_eq(o.prefix, "jobq");
    cr_expect_eq(o.workers, 2);
    cr_expect_eq(o.threads, 0); /* auto */
    cr_expect_eq(o.max_payload, 64LL << 20);
    cr_expect_eq(o.verbose, 0);
    cr_expect_eq(argi, 1);
}

Test(config, env_overrides_defaults_and_flags_override_env) {
    opts_t o;
    int argi;
    char err[256];

    setenv("T_WORKERS", "5", 1);
    setenv("T_PREFIX", "envp", 1);
    setenv("T_VERBOSE", "true", 1);
    setenv("T_THREADS", "", 1); /* empty: as if unset */
    cr_assert_eq(parse(&o, &argi, err, ARGS("--workers", "7")), 0, "%s", err);
    cr_expect_eq(o.workers, 7);
    cr_expect_str_eq(o.prefix, "envp");
    cr_expect_eq(o.verbose, 1);
    cr_expect_eq(o.threads, 0);
}

Test(config, bad_env_names_the_variable) {
    opts_t o;
    int argi;
    char err[256] = "";
    setenv("T_WORKERS", "many", 1);
    cr_expect_eq(parse(&o, &argi, err, (const char *[]){NULL}), -1);
    cr_expect_str_eq(err, "T_WORKERS: 'many' is not a number");
}

Test(config, flag_forms) {
    opts_t o;
    int argi;
    char err[256];
    cr_assert_eq(parse(&o, &argi, err,
                       ARGS("--workers=3", "--prefix", "p", "--verbose", "--url=redis://h:1")),
                 0, "%s", err);
    cr_expect_eq(o.workers, 3);
    cr_expect_str_eq(o.prefix, "p");
    cr_expect_eq(o.verbose, 1);
    cr_expect_str_eq(o.url, "redis://h:1");
    cr_expect_eq(argi, 6);

    cr_assert_eq(parse(&o, &argi, err, ARGS("--verbose=false")), 0, "%s", err);
    cr_expect_eq(o.verbose, 0);
}

Test(config, stops_at_positional_arguments) {
    opts_t o;
    int argi;
    char err[256];
    cr_assert_eq(parse(&o, &argi, err, ARGS("--workers", "4", "enqueue", "--x")), 0, "%s", err);
    cr_expect_eq(argi, 3);
    cr_assert_eq(parse(&o, &argi, err, ARGS("--", "--workers")), 0, "%s", err);
    cr_expect_eq(argi, 2);
    cr_expect_eq(o.workers, 2);
}

Test(config, bounds) {
    opts_t o;
    int argi;
    char err[256] = "";
    cr_expect_eq(parse(&o, &argi, err, ARGS("--max-payload", "0")), -1);
    cr_expect_str_eq(err, "--max-payload: 0 is out of range [1, 1073741824]");
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers=65")), -1);
    cr_expect_str_eq(err, "--workers: 65 is out of range [1, 64]");
    cr_expect_eq(argi, 1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers=64")), 0, "%s", err);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers=1")), 0, "%s", err);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers=0")), -1);
}

Test(config, not_a_number) {
    opts_t o;
    int argi;
    char err[256] = "";
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "x")), -1);
    cr_expect_str_eq(err, "--workers: 'x' is not a number");
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "3x")), -1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", " 3")), -1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "")), -1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "99999999999999999999")), -1);
}

Test(config, byte_suffixes) {
    static const struct {
        const char *in;
        long long want;
    } cases[] = {
        {"1", 1},          {"1024", 1024},      {"1k", 1024},      {"2K", 2048},
        {"3m", 3LL << 20}, {"64M", 64LL << 20}, {"1g", 1LL << 30}, {"1G", 1LL << 30},
    };
    opts_t o;
    int argi;
    char err[256] = "";

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--max-payload=%s", cases[i].in);
        cr_expect_eq(parse(&o, &argi, err, ARGS(flag)), 0, "%s: %s", flag, err);
        cr_expect_eq(o.max_payload, cases[i].want, "%s", flag);
    }
    cr_expect_eq(parse(&o, &argi, err, ARGS("--max-payload=2g")), -1);
    cr_expect_str_eq(err, "--max-payload: 2g is out of range [1, 1073741824]");
    cr_expect_eq(parse(&o, &argi, err, ARGS("--max-payload=5x")), -1);
    cr_expect(strstr(err, "is not a size") != NULL, "%s", err);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--max-payload=k")), -1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--max-payload=99999999999g")), -1);
}

Test(config, parse_bytes_alone) {
    long long v = 0;
    cr_expect_eq(jq_parse_bytes("4k", &v), 0);
    cr_expect_eq(v, 4096);
    cr_expect_eq(jq_parse_bytes("-1k", &v), 0, "the bounds are the caller's");
    cr_expect_eq(v, -1024);
    cr_expect_eq(jq_parse_bytes("", &v), -1);
    cr_expect_eq(jq_parse_bytes("k", &v), -1);
    cr_expect_eq(jq_parse_bytes("1 k", &v), -1);
    cr_expect_eq(jq_parse_bytes(" 1k", &v), -1);
    cr_expect_eq(jq_parse_bytes("1kk", &v), -1);
    cr_expect_eq(jq_parse_bytes("8589934591g", &v), 0);
    cr_expect_eq(jq_parse_bytes("8589934592g", &v), -1, "past LLONG_MAX");
}

Test(config, auto) {
    opts_t o;
    int argi;
    char err[256] = "";
    cr_expect_eq(parse(&o, &argi, err, ARGS("--threads", "8")), 0, "%s", err);
    cr_expect_eq(o.threads, 8);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--threads", "auto")), 0, "%s", err);
    cr_expect_eq(o.threads, 0);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--threads", "0")), -1);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--threads", "lots")), -1);
    cr_expect_str_eq(err, "--threads: 'lots' is not a number or auto");
}

Test(config, unknown_option_and_missing_value) {
    opts_t o;
    int argi;
    char err[256] = "";
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "2", "--x")), -1);
    cr_expect_str_eq(err, "unknown option --x");
    cr_expect_eq(argi, 3);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--nope=1")), -1);
    cr_expect_str_eq(err, "unknown option --nope");
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers")), -1);
    cr_expect_str_eq(err, "--workers needs a value");
}

Test(config, help) {
    opts_t o;
    int argi;
    char err[256];
    cr_expect_eq(parse(&o, &argi, err, ARGS("--workers", "3", "--help")), JQ_OPTS_HELP);
    cr_expect_eq(parse(&o, &argi, err, ARGS("-h")), JQ_OPTS_HELP);
}

Test(config, string_too_long) {
    opts_t o;
    int argi;
    char err[256] = "";
    cr_expect_eq(parse(&o, &argi, err, ARGS("--prefix", "0123456789abcdef")), -1);
    cr_expect(strstr(err, "--prefix: value is too long") != NULL, "%s", err);
    cr_expect_eq(parse(&o, &argi, err, ARGS("--prefix", "0123456789abcde")), 0);
}

Test(config, set_one_value) {
    opts_t o;
    char err[256] = "";
    cr_expect_eq(jq_opts_set(&table[2], &o, "9", err, sizeof(err)), 0);
    cr_expect_eq(o.workers, 9);
    cr_expect_eq(jq_opts_set(&table[5], &o, "yes", err, sizeof(err)), 0);
    cr_expect_eq(o.verbose, 1);
    cr_expect_eq(jq_opts_set(&table[5], &o, "maybe", err, sizeof(err)), -1);
    cr_expect(strstr(err, "--verbose: 'maybe' is not a boolean") != NULL, "%s", err);
}

/* Reads what a function writes to `fd`: redirects fd to a temp file. */
static char *capture_fd(int fd, void (*fn)(void *), void *arg) {
    FILE *tmp = tmpfile();
    int saved = dup(fd);
    static char buf[8192];
    size_t n;

    fflush(NULL);
    dup2(fileno(tmp), fd);
    fn(arg);
    fflush(NULL);
    dup2(saved, fd);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static void print_usage(void *arg) {
    (void)arg;
    jq_opts_usage(table, stdout);
}

Test(config, usage_lists_every_option) {
    char *out = capture_fd(1, print_usage, NULL);
    cr_expect(strstr(out, "--workers N") != NULL, "%s", out);
    cr_expect(strstr(out, "worker processes (env T_WORKERS, default 2)") != NULL, "%s", out);
    cr_expect(strstr(out, "--threads N|auto") != NULL, "%s", out);
    cr_expect(strstr(out, "--max-payload SIZE") != NULL, "%s", out);
    cr_expect(strstr(out, "--help") != NULL, "%s", out);
}

static void log_opts(void *arg) { jq_opts_log(table, arg); }

Test(config, log_masks_passwords) {
    opts_t o;
    int argi;
    char err[256];
    cr_assert_eq(parse(&o, &argi, err, ARGS("--url", "redis://:hunter2@h:1", "--workers", "3")), 0,
                 "%s", err);
    char *out = capture_fd(2, log_opts, &o);
    cr_expect(strstr(out, "config: url=redis://:***@h:1 prefix=jobq workers=3 "
                          "threads=auto max-payload=67108864 verbose=false tag=[]") != NULL,
              "%s", out);
    cr_expect_null(strstr(out, "hunter2"));
}

static int list_entries(const char *list, char out[][16], int max) {
    const char *pos = list, *e;
    size_t n;
    int k = 0;
    while (k < max && (e = jq_opts_list_next(&pos, &n)) != NULL) {
        snprintf(out[k], 16, "%.*s", (int)n, e);
        k++;
    }
    return k;
}

Test(config, list_repeats_and_replaces_env) {
    opts_t o;
    int argi;
    char err[256], got[4][16];
    cr_assert_eq(parse(&o, &argi, err, (const char *[]){NULL}), 0, "%s", err);
    cr_expect_str_eq(o.tags, "");
    cr_expect_eq(list_entries(o.tags, got, 4), 0);

    setenv("T_TAGS", "x y\n\nz", 1);
    cr_assert_eq(parse(&o, &argi, err, (const char *[]){NULL}), 0, "%s", err);
    cr_assert_eq(list_entries(o.tags, got, 4), 2);
    cr_expect_str_eq(got[0], "x y");
    cr_expect_str_eq(got[1], "z");

    /* Flags replace what the environment gave, then add up. */
    cr_assert_eq(parse(&o, &argi, err, ARGS("--tag", "a", "--tag=b c")), 0, "%s", err);
    unsetenv("T_TAGS");
    cr_assert_eq(list_entries(o.tags, got, 4), 2);
    cr_expect_str_eq(got[0], "a");
    cr_expect_str_eq(got[1], "b c");

    cr_expect_eq(parse(&o, &argi, err, ARGS("--tag", "")), -1);
    cr_expect(strstr(err, "--tag: empty value") != NULL, "%s", err);
    cr_expect_eq(
        parse(&o, &argi, err, ARGS("--tag", "0123456789abcdef", "--tag", "0123456789abcdef")), -1);
    cr_expect(strstr(err, "--tag: too many") != NULL, "%s", err);
}
