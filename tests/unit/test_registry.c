/* Tests of consumer/handlers/registry.c, and of the task API every handler
 * uses (jq_task_fail, jq_task_done, include/jobq/handler.h). */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "registry.h"

static int dummy_run(jq_task_t *t) {
    (void)t;
    return 0;
}

static int dummy_start(jq_task_t *t) {
    (void)t;
    return 0;
}

static const jq_handler_t cpu_a = {.name = "alpha", .kind = JQ_KIND_CPU, .run = dummy_run};
static const jq_handler_t io_b = {.name = "beta", .kind = JQ_KIND_IO, .start = dummy_start};
static const jq_handler_t cpu_a_again = {.name = "alpha", .kind = JQ_KIND_IO, .start = dummy_start};

Test(registry, add_and_find) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_registry_add(&r, &cpu_a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(jq_registry_add(&r, &io_b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(jq_registry_find(&r, "alpha", 5), &cpu_a);
    cr_assert_eq(jq_registry_find(&r, "beta", 4), &io_b);
    cr_assert_null(jq_registry_find(&r, "gamma", 5));
    cr_assert_null(jq_registry_find(&r, "", 0));
}

Test(registry, find_uses_length_not_nul) {
    jq_registry_t r;
    char err[JQ_ERR_LEN];
    jq_registry_init(&r);
    jq_registry_add(&r, &cpu_a, err, sizeof err);
    /* Type names come from a stream entry, with no NUL after them. */
    const char buf[] = {'a', 'l', 'p', 'h', 'a', 'x'};
    cr_assert_eq(jq_registry_find(&r, buf, 5), &cpu_a);
    cr_assert_null(jq_registry_find(&r, buf, 6));
    cr_assert_null(jq_registry_find(&r, buf, 4));
}

Test(registry, duplicate_name_is_refused) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_registry_add(&r, &cpu_a, err, sizeof err), 0);
    cr_assert_eq(jq_registry_add(&r, &cpu_a_again, err, sizeof err), -1);
    cr_assert(strstr(err, "alpha") != NULL, "err: %s", err);
    cr_assert(strstr(err, "already") != NULL, "err: %s", err);
    cr_assert_eq(jq_registry_find(&r, "alpha", 5), &cpu_a);
    cr_assert_eq(r.n, 1);
}

Test(registry, handler_must_have_its_kinds_function) {
    static const jq_handler_t cpu_no_run = {.name = "x", .kind = JQ_KIND_CPU, .start = dummy_start};
    static const jq_handler_t io_no_start = {.name = "y", .kind = JQ_KIND_IO, .run = dummy_run};
    static const jq_handler_t no_name = {.kind = JQ_KIND_CPU, .run = dummy_run};
    static const jq_handler_t empty_name = {.name = "", .kind = JQ_KIND_CPU, .run = dummy_run};
    static const jq_handler_t bad_kind = {.name = "z", .kind = (jq_kind_t)7, .run = dummy_run};
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_registry_add(&r, &cpu_no_run, err, sizeof err), -1);
    cr_assert(strstr(err, "run") != NULL, "err: %s", err);
    cr_assert_eq(jq_registry_add(&r, &io_no_start, err, sizeof err), -1);
    cr_assert(strstr(err, "start") != NULL, "err: %s", err);
    cr_assert_eq(jq_registry_add(&r, &no_name, err, sizeof err), -1);
    cr_assert_eq(jq_registry_add(&r, &empty_name, err, sizeof err), -1);
    cr_assert_eq(jq_registry_add(&r, &bad_kind, err, sizeof err), -1);
    cr_assert_eq(jq_registry_add(&r, NULL, err, sizeof err), -1);
    cr_assert_eq(r.n, 0);
}

Test(registry, table_full) {
    static char names[JQ_HANDLERS_MAX + 1][16];
    static jq_handler_t hs[JQ_HANDLERS_MAX + 1];
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    for (int i = 0; i <= JQ_HANDLERS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "h%d", i);
        hs[i] = (jq_handler_t){.name = names[i], .kind = JQ_KIND_CPU, .run = dummy_run};
    }
    for (int i = 0; i < JQ_HANDLERS_MAX; i++)
        cr_assert_eq(jq_registry_add(&r, &hs[i], err, sizeof err), 0, "%s", err);
    cr_assert_eq(jq_registry_add(&r, &hs[JQ_HANDLERS_MAX], err, sizeof err), -1);
    cr_assert(strstr(err, "full") != NULL, "err: %s", err);
    cr_assert_eq(jq_registry_find(&r, "h63", 3), &hs[63]);
    cr_assert_null(jq_registry_find(&r, "h64", 3));
}

Test(task, fail_formats_and_returns_minus_one) {
    jq_task_t t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(jq_task_fail(&t, "bad %s: %d", "thing", 42), -1);
    cr_assert_eq(t.failed, 1);
    cr_assert_str_eq(t.error, "bad thing: 42");
}

Test(task, fail_truncates_long_reasons) {
    jq_task_t t;
    memset(&t, 0, sizeof t);
    char big[2 * JQ_ERR_LEN];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    jq_task_fail(&t, "%s", big);
    cr_assert_eq(strlen(t.error), JQ_ERR_LEN - 1);
}

static int done_calls;
static jq_task_t *done_task;

static void count_done(jq_task_t *t) {
    done_calls++;
    done_task = t;
}

Test(task, done_calls_done_cb) {
    jq_task_t t;
    memset(&t, 0, sizeof t);
    t.done_cb = count_done;
    jq_task_done(&t);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(done_task, &t);
}
