/* Tests of consumer/handlers/exec_cmd.c: the word splitting (COMMAND is split
 * once, at start, with shell quoting and nothing else: no expansion of any
 * kind), and what each run of a command is given: the guard's argv, the
 * environment, the stdin bytes. */

#include <criterion/criterion.h>
#include <string.h>

#include "exec_cmd.h"

static char buf[256];
static char *argv[8];
static char err[128];

static int split(const char *cmd) {
    memset(argv, 0, sizeof argv);
    err[0] = '\0';
    return jq_exec_split(cmd, buf, sizeof buf, argv, 7, err, sizeof err);
}

Test(exec, plain_words) {
    cr_assert_eq(split("  /bin/prog  -a\tb  "), 3);
    cr_expect_str_eq(argv[0], "/bin/prog");
    cr_expect_str_eq(argv[1], "-a");
    cr_expect_str_eq(argv[2], "b");
    cr_expect_null(argv[3]);
}

Test(exec, quotes_and_backslashes) {
    cr_assert_eq(split("p 'a b' \"c \\\"d\\\" \\\\\" e\\ f 'x\\y' \"\""), 6, "%s", err);
    cr_expect_str_eq(argv[1], "a b");
    cr_expect_str_eq(argv[2], "c \"d\" \\");
    cr_expect_str_eq(argv[3], "e f");
    cr_expect_str_eq(argv[4], "x\\y");
    cr_expect_str_eq(argv[5], "");
}

Test(exec, nothing_is_expanded) {
    cr_assert_eq(split("p $HOME ~ * `id` $(id) ;&|>"), 7);
    cr_expect_str_eq(argv[1], "$HOME");
    cr_expect_str_eq(argv[2], "~");
    cr_expect_str_eq(argv[3], "*");
    cr_expect_str_eq(argv[4], "`id`");
    cr_expect_str_eq(argv[5], "$(id)");
    cr_expect_str_eq(argv[6], ";&|>");
}

Test(exec, errors) {
    cr_expect_eq(split("p 'open"), -1);
    cr_expect_str_eq(err, "unbalanced ' quote");
    cr_expect_eq(split("p \"open"), -1);
    cr_expect_eq(split("p trailing\\"), -1);
    cr_expect_str_eq(err, "ends with a backslash");
    cr_expect_eq(split("   "), -1);
    cr_expect_str_eq(err, "no program named");
    cr_expect_eq(split("1 2 3 4 5 6 7 8"), -1);
    cr_expect_str_eq(err, "more than 7 words");
}

/* ---- what a run is given ---- */

static jq_exec_conf_t conf = {.stdin_mode = JQ_EXEC_STDIN_AUTO,
                              .nenv = 1,
                              .env = {"EXTRA=1"},
                              .worker_pid = "42",
                              .guard = "/x/jobq-exec-guard"};

static void parse(jq_exec_cmd_t *c, const char *entry) {
    memset(c, 0, sizeof(*c));
    c->conf = &conf;
    cr_assert_eq(jq_exec_cmd_parse(c, entry, strlen(entry), err, sizeof err), 0, "%s", err);
}

Test(exec, a_run_is_the_guard_then_the_program_then_the_words) {
    static jq_exec_cmd_t c;
    parse(&c, "up=sh -c 'tr a-z A-Z'");
    cr_expect_str_eq(c.name, "up");
    cr_expect(strcmp(c.program, "/bin/sh") == 0 || strcmp(c.program, "/usr/bin/sh") == 0, "%s",
              c.program);
    char *args[JQ_EXEC_RUN_ARGS];
    jq_exec_cmd_args(&c, args);
    const char *want[] = {"/x/jobq-exec-guard", "--exec-guard", "42", c.program, "sh", "-c",
                          "tr a-z A-Z"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) cr_expect_str_eq(args[i], want[i]);
    cr_expect_null(args[7]);
}

Test(exec, the_environment_is_the_job_then_the_exec_env) {
    static jq_exec_cmd_t c;
    parse(&c, "x=/bin/cat");
    jq_task_t t;
    memset(&t, 0, sizeof t);
    t.job_id = "j-1";
    t.queue = "q";
    t.attempt = 3;
    jq_exec_env_t e;
    jq_exec_cmd_env(&c, &t, &e);
    cr_expect_str_eq(e.env[0], "JOBQ_JOB_ID=j-1");
    cr_expect_str_eq(e.env[1], "JOBQ_QUEUE=q");
    cr_expect_str_eq(e.env[2], "JOBQ_ATTEMPT=3");
    cr_expect_str_eq(e.env[3], "JOBQ_PROGRESS_FD=3");
    cr_expect_str_eq(e.env[4], "EXTRA=1");
    cr_expect_null(e.env[5]);
}

Test(exec, stdin_is_raw_bytes_for_str_and_msgpack_for_the_rest) {
    static jq_exec_cmd_t c;
    parse(&c, "x=/bin/cat");
    msgpack_sbuffer scratch;
    msgpack_sbuffer_init(&scratch);
    uv_buf_t b;
    msgpack_object str = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 2, .ptr = "hi"}};
    cr_assert_eq(jq_exec_cmd_stdin(&c, &str, &scratch, &b), 0);
    cr_expect(b.len == 2 && memcmp(b.base, "hi", 2) == 0 && scratch.size == 0);
    msgpack_object num = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 7};
    cr_assert_eq(jq_exec_cmd_stdin(&c, &num, &scratch, &b), 0);
    cr_expect(b.len == 1 && (unsigned char)b.base[0] == 7);
    conf.stdin_mode = JQ_EXEC_STDIN_JSON;
    msgpack_sbuffer_clear(&scratch);
    cr_assert_eq(jq_exec_cmd_stdin(&c, &str, &scratch, &b), 0);
    cr_expect(b.len == 4 && memcmp(b.base, "\"hi\"", 4) == 0, "%.*s", (int)b.len, b.base);
    conf.stdin_mode = JQ_EXEC_STDIN_AUTO;
    msgpack_sbuffer_destroy(&scratch);
}
