/* `jobq stats`: the figures of PROTOCOL §7 for one queue or every queue
 * in <p>:queues, as a table or (--json) an array of objects. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char stats_help[] =
    "usage: jobq stats [-q QUEUE] [--json]\n"
    "\n"
    "Per queue (every queue in <prefix>:queues, or QUEUE): ready (in the\n"
    "stream, not taken), running (taken, not finished), scheduled (delayed or\n"
    "waiting for a retry), dead (in the dead set), paused, and the totals\n"
    "processed, failed (attempts), retried and dead. --json prints an array\n"
    "of objects, one per queue, even for one queue.\n";

static void print_header(int w) {
    printf("%-*s %9s %9s %9s %9s %6s %11s %9s %9s %10s\n", w, "QUEUE", "READY",
           "RUNNING", "SCHEDULED", "DEAD", "PAUSED", "PROCESSED", "FAILED",
           "RETRIED", "TOTAL_DEAD");
}

static void print_row(const jq_queue_stats_t *s, int w) {
    printf("%-*s %9lld %9lld %9lld %9lld %6s %11lld %9lld %9lld %10lld\n",
           w, s->queue, s->ready, s->running, s->scheduled, s->dead,
           s->paused ? "yes" : "no", s->processed, s->failed, s->retried,
           s->dead_total);
}

static void print_json(const jq_queue_stats_t *s, int first) {
    fputs(first ? "\n{\"queue\":" : ",\n{\"queue\":", stdout);
    jq_json_cstr(stdout, s->queue);
    printf(",\"length\":%lld,\"ready\":%lld,\"running\":%lld,\"scheduled\":%lld,"
           "\"dead\":%lld,\"paused\":%s,\"processed\":%lld,\"failed\":%lld,"
           "\"retried\":%lld,\"dead_total\":%lld}",
           s->length, s->ready, s->running, s->scheduled, s->dead,
           s->paused ? "true" : "false", s->processed, s->failed, s->retried,
           s->dead_total);
}

int jq_cli_stats(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "stats", cli, 0, 0};
    const char *queue = NULL;
    int json = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(stats_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            jq_argp_set(&p, NULL, "json", &json) || jq_argp_unknown(&p))
            continue;
        return jq_cli_usage_error("stats", "unexpected argument '%s'", argv[p.i]);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (queue && jq_cli_check_name("stats", "queue name", queue) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;

    char err[JQ_ERR_LEN];
    char **names = NULL;
    size_t n = 0;
    const char *one[1] = {queue};
    if (!queue && jq_client_queues(cli->client, &names, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: stats: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    const char *const *list = queue ? one : (const char *const *)names;
    size_t count = queue ? 1 : n;
    int w = 5;
    for (size_t i = 0; i < count; i++)
        if ((int)strlen(list[i]) > w) w = (int)strlen(list[i]);
    if (json) fputs("[", stdout);
    else print_header(w);
    status = JQ_EXIT_OK;
    size_t printed = 0;
    for (size_t i = 0; i < count; i++) {
        jq_queue_stats_t s;
        /* A foreign member of <p>:queues cannot name keys: skip it. */
        if (!jq_name_valid(list[i], strlen(list[i]))) continue;
        if (jq_client_stats(cli->client, list[i], &s, err, sizeof(err)) < 0) {
            fprintf(stderr, "jobq: stats: %s\n", err);
            status = JQ_EXIT_REDIS;
            break;
        }
        if (json) print_json(&s, printed == 0);
        else print_row(&s, w);
        printed++;
    }
    if (json) fputs(printed ? "\n]\n" : "]\n", stdout);
    jq_client_queues_free(names, n);
    return status;
}
