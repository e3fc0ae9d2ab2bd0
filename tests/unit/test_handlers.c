/* Tests of consumer/handlers/handlers.c: which handlers jq_handlers_setup
 * loads for a set of options, and which setups it refuses at start. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "options.h"

/* Parses the options of argv (NULL-terminated, without argv[0]) and runs
 * the setup into r. Returns what jq_handlers_setup returned. */
static int setup_with(jq_registry_t *r, char *err, const char **args) {
    char *argv[16] = {"jobq-consumer"};
    int argc = 1;
    while (args[argc - 1] != NULL && argc < 15) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    static jq_options_t o;
    cr_assert_eq(jq_options_parse(&o, argc, argv, err, JQ_ERR_LEN), 0, "%s", err);
    jq_registry_init(r);
    return jq_handlers_setup(r, &o, err, JQ_ERR_LEN);
}

Test(handlers, defaults_are_the_builtins) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    const char *args[] = {NULL};
    cr_assert_eq(setup_with(&r, err, args), 0, "%s", err);
    cr_assert_eq(r.n, 5);
    cr_assert_str_eq(r.origin[0], "built-in");
    cr_assert_null(r.adding);
    cr_assert_null(jq_registry_find(&r, "http", 4));
}

Test(handlers, an_exec_command_is_registered_after_the_builtins) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    const char *args[] = {"--exec", "up=/bin/cat", NULL};
    cr_assert_eq(setup_with(&r, err, args), 0, "%s", err);
    const jq_handler_t *h = jq_registry_find(&r, "up", 2);
    cr_assert_not_null(h);
    cr_assert_eq(h->kind, JQ_KIND_IO);
    cr_assert_str_eq(r.origin[r.n - 1], "--exec");
}

Test(handlers, an_exec_name_taken_by_a_builtin_is_refused) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    const char *args[] = {"--exec", "echo=/bin/cat", NULL};
    cr_assert_eq(setup_with(&r, err, args), -1);
    cr_assert(strstr(err, "echo") && strstr(err, "built-in"), "err: %s", err);
}
