/* jobq-consumer: parse the options, then run as the master, or as one of
 * its workers when the master re-executed us with --worker-role. */

#include <stdio.h>
#include <string.h>

#include "exec_guard.h"
#include "handlers.h"
#include "log.h"
#include "master.h"
#include "options.h"
#include "pool.h"
#include "worker.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_INIT = 3 };

/* The pool's settings are process-wide (every pool of this process starts
 * with them) and the pool names its own modes, so options.c only carries
 * the strings and we hand them over here, before any pool exists. */
static int apply_pool_options(const jq_options_t *o, char *err, size_t errlen) {
    if (jq_pool_set_mode(o->cpu_mode, err, errlen) != 0) return -1;
    if (jq_pool_set_sched(o->cpu_sched, err, errlen) != 0) return -1;
    jq_pool_set_yield_us(o->cpu_yield_us);
    return 0;
}

int main(int argc, char **argv) {
    static jq_options_t opt;
    char err[JQ_ERR_LEN];
    /* A worker re-executes us as the guard of each exec job's command. */
    if (argc > 1 && strcmp(argv[1], JQ_EXEC_GUARD_ARG) == 0) return jq_exec_guard_main(argc, argv);
    jq_log_set_role("master");
    int rc = jq_options_parse(&opt, argc, argv, err, sizeof(err));
    if (rc == JQ_OPTS_HELP) {
        jq_options_usage(stdout);
        return EXIT_OK;
    }
    if (rc == 0) rc = apply_pool_options(&opt, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "jobq-consumer: %s\n(try --help)\n", err);
        return EXIT_USAGE;
    }
    if (opt.worker_role[0]) return jq_worker_main(&opt);
    /* The master loads every handler once, as each worker will: a bad
     * plugin or --exec stops us here, not each worker in a crash loop. */
    static jq_registry_t reg;
    if (jq_handlers_setup(&reg, &opt, err, sizeof(err)) != 0) {
        fprintf(stderr, "jobq-consumer: %s\n", err);
        return EXIT_USAGE;
    }
    return jq_master_main(&opt, argc, argv);
}
