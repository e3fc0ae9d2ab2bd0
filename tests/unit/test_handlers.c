/* Tests of consumer/handlers/handlers.c: which handlers jq_handlers_setup
 * loads for a set of options, and which setups it refuses at start. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* issue 21: access(X_OK) says yes to a directory (and, for root, to any
 * file with one x bit), so a directory was accepted at start and every job
 * then failed at exec. */
Test(handlers, an_exec_program_that_is_a_directory_is_refused_at_start) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    const char *args[] = {"--exec", "x=/tmp", NULL};
    cr_assert_eq(setup_with(&r, err, args), -1);
    cr_assert_str_eq(err, "--exec x: /tmp is not an executable file: it is a directory");
}

Test(handlers, an_exec_program_without_the_x_bit_is_refused_at_start) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "", path[] = "/tmp/jq-test-noexec-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char entry[64];
    snprintf(entry, sizeof entry, "x=%s", path);
    const char *args[] = {"--exec", entry, NULL};
    int rc = setup_with(&r, err, args);
    unlink(path);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err, path) && strstr(err, "no permission to execute it (mode 0600"), "err: %s",
              err);
}

Test(handlers, the_path_search_skips_a_directory_of_the_programs_name) {
    static jq_registry_t r;
    char err[JQ_ERR_LEN] = "", dir[] = "/tmp/jq-test-path-XXXXXX", sub[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/jq-no-such-prog", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    setenv("PATH", dir, 1);
    const char *args[] = {"--exec", "x=jq-no-such-prog", NULL};
    int rc = setup_with(&r, err, args);
    rmdir(sub);
    rmdir(dir);
    cr_assert_eq(rc, -1);
    cr_assert_str_eq(err, "--exec x: program 'jq-no-such-prog' not found in PATH");
}
