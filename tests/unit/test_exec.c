/* Tests of consumer/handlers/exec_cmd.c: the word splitting: COMMAND is split once, at
 * start, with shell quoting and nothing else (no expansion of any kind). */

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
