/* `jobq batch create|seal|show` (PROTOCOL §12): a group of jobs, possibly
 * over several queues, with callbacks enqueued once when its last job
 * ends. Jobs join with `jobq enqueue --batch ID`. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char batch_help[] =
    "usage: jobq batch create [-q QUEUE] [--on-complete TYPE PAYLOAD_JSON]\n"
    "                         [--on-success TYPE PAYLOAD_JSON]\n"
    "       jobq batch seal ID [--json]\n"
    "       jobq batch show ID [--json]\n"
    "\n"
    "create: prints a new batch's id; its keys and callbacks live in QUEUE.\n"
    "Add jobs (in any queue) with `jobq enqueue --batch ID ...`, then seal it.\n"
    "Once it is sealed and its last job ended, the on-complete job is enqueued\n"
    "once in QUEUE (and the on-success job, when no job died or was\n"
    "cancelled), with id ID:complete (ID:success) and the payload\n"
    "{\"batch\",\"callback\",\"total\",\"done\",\"dead\",\"cancelled\",\"payload\"}.\n"
    "show: its counts (pending, done, dead, cancelled). Exit 1 when there is\n"
    "no such batch (never made, or gone a day after its callbacks).\n";

/* "--on-complete TYPE PAYLOAD": two values. */
static int match_callback(jq_argp_t *p, const char *name, const char **type, const char **payload) {
    if (p->no_more_opts || strcmp(p->argv[p->i], name)) return 0;
    if (p->i + 2 >= p->argc) {
        jq_cli_usage_error(p->cmd, "%s wants TYPE and PAYLOAD_JSON", name);
        p->bad = 1;
        return 1;
    }
    *type = p->argv[p->i + 1];
    *payload = p->argv[p->i + 2];
    p->i += 3;
    return 1;
}

static void print_batch(const jq_batch_t *b, int json) {
    if (json) {
        printf("{\"id\":\"%s\",\"queue\":\"%s\",\"sealed\":%s,\"total\":%lld,\"pending\":%lld,"
               "\"done\":%lld,\"dead\":%lld,\"cancelled\":%lld,\"created_at\":%lld,"
               "\"fired_at\":",
               b->id, b->queue, b->sealed ? "true" : "false", b->total, b->pending, b->done,
               b->dead, b->cancelled, b->created_at);
        if (b->fired_at)
            printf("%lld}\n", b->fired_at);
        else
            fputs("null}\n", stdout);
        return;
    }
    char when[32];
    printf("batch %s  queue %s  %s\n", b->id, b->queue, b->sealed ? "sealed" : "open");
    printf("total %lld  pending %lld  done %lld  dead %lld  cancelled %lld\n", b->total, b->pending,
           b->done, b->dead, b->cancelled);
    if (b->fired_at) {
        jq_cli_time(b->fired_at, when, sizeof(when));
        printf("callbacks enqueued %s\n", when);
    }
}

static int create(jq_cli_t *cli, jq_argp_t *p) {
    jq_batch_opts_t o = {jq_cli_queue(cli), NULL, NULL, NULL, NULL};
    while (p->i < p->argc && !p->bad) {
        if (jq_argp_global(p) || jq_argp_opt(p, "-q", "queue", &o.queue) ||
            match_callback(p, "--on-complete", &o.on_complete_type, &o.on_complete_payload) ||
            match_callback(p, "--on-success", &o.on_success_type, &o.on_success_payload) ||
            jq_argp_unknown(p))
            continue;
        return jq_cli_usage_error(p->cmd, "unexpected argument '%s'", p->argv[p->i]);
    }
    if (p->bad) return JQ_EXIT_USAGE;
    if (jq_cli_check_name(p->cmd, "queue name", o.queue) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    char id[JQ_CLIENT_ID_LEN], err[JQ_ERR_LEN];
    if (jq_client_batch_create(cli->client, &o, id, sizeof(id), err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: batch create: %s\n", err);
        /* A payload that is not JSON is the caller's to fix. */
        return strstr(err, "payload") || strstr(err, "type") || strstr(err, "queue")
                   ? JQ_EXIT_USAGE
                   : JQ_EXIT_REDIS;
    }
    printf("%s\n", id);
    return JQ_EXIT_OK;
}

/* seal and show: one ID, --json. */
static int one(jq_cli_t *cli, jq_argp_t *p, int seal) {
    const char *id = NULL;
    int json = 0;
    while (p->i < p->argc && !p->bad) {
        if (jq_argp_global(p) || jq_argp_set(p, NULL, "json", &json) || jq_argp_unknown(p))
            continue;
        if (id) return jq_cli_usage_error(p->cmd, "unexpected argument '%s'", p->argv[p->i]);
        id = jq_argp_take(p);
    }
    if (p->bad) return JQ_EXIT_USAGE;
    if (!id) return jq_cli_usage_error(p->cmd, "missing batch ID");
    int status = jq_cli_connect(cli);
    if (status) return status;
    jq_batch_t b;
    char err[JQ_ERR_LEN];
    int rc = seal ? jq_client_batch_seal(cli->client, id, &b, err, sizeof(err))
                  : jq_client_batch_show(cli->client, id, &b, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "jobq: %s: %s\n", p->cmd, err);
        if (rc == JQ_CLIENT_ENOTFOUND) return JQ_EXIT_FAIL;
        return strstr(err, "bad batch id") ? JQ_EXIT_USAGE : JQ_EXIT_REDIS;
    }
    print_batch(&b, json);
    return JQ_EXIT_OK;
}

int jq_cli_batch(jq_cli_t *cli, int argc, char **argv, int start) {
    if (start >= argc || !strcmp(argv[start], "-h") || !strcmp(argv[start], "--help")) {
        fputs(batch_help, start >= argc ? stderr : stdout);
        return start >= argc ? JQ_EXIT_USAGE : JQ_EXIT_OK;
    }
    const char *sub = argv[start];
    static char cmd[32];
    snprintf(cmd, sizeof(cmd), "batch %s", sub);
    jq_argp_t p = {argc, argv, start + 1, cmd, cli, 0, 0};
    for (int i = start + 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(batch_help, stdout);
            return JQ_EXIT_OK;
        }
    if (!strcmp(sub, "create")) return create(cli, &p);
    if (!strcmp(sub, "seal")) return one(cli, &p, 1);
    if (!strcmp(sub, "show")) return one(cli, &p, 0);
    return jq_cli_usage_error("batch", "unknown subcommand '%s' (want create, seal or show)", sub);
}
