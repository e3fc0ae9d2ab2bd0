/* `jobq jobs list|show|keep-done`: browse the jobs of a queue wherever
 * they are (ready, running, scheduled, done, dead), a page at a time. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "view.h"

static const char jobs_help[] =
    "usage: jobq jobs list [-q QUEUE] [--state STATE] [--count N] [--after ID | --start N] "
    "[--json]\n"
    "       jobq jobs show [-q QUEUE] ID\n"
    "       jobq jobs keep-done [-q QUEUE] N\n"
    "\n"
    "list: one page of the queue's jobs in STATE: ready (in the stream, not yet\n"
    "delivered; the default), running (delivered, not yet acknowledged),\n"
    "scheduled (delayed or waiting for a retry), done (only for a queue that\n"
    "keeps an index of them: keep-done), dead. --count: page size (default 50).\n"
    "ready and running go through the priority levels high, normal, low (the\n"
    "order a worker runs them in; LEVEL says each job's), oldest first within\n"
    "a level, and page by entry id: the next page is --after the cursor the\n"
    "last page ends with (ENTRY, or LEVEL:ENTRY beyond normal); the sets by\n"
    "position: --start N. Newest first for done and dead, oldest first\n"
    "otherwise.\n"
    "show: the job wherever it is, as JSON, with where it is (\"state\").\n"
    "Exit 1 when it is nowhere.\n"
    "keep-done: index the queue's last N done jobs (0: stop, and drop the\n"
    "index); costs Redis two writes per done job of this queue.\n";

typedef enum { S_READY, S_RUNNING, S_SCHEDULED, S_DONE, S_DEAD, S_N } state_t;
static const char *const state_names[S_N] = {"ready", "running", "scheduled", "done", "dead"};

static const char *field(const jq_dead_job_t *j, const char *name) {
    const jq_field_t *f = jq_dead_job_field(j, name);
    return f ? f->value : NULL;
}

static void print_table(state_t st, const jq_dead_job_t *jobs, size_t n) {
    const char *at = st == S_DONE        ? "FINISHED"
                     : st == S_DEAD      ? "DIED"
                     : st == S_SCHEDULED ? "DUE"
                                         : "ENQUEUED";
    int stream = st == S_READY || st == S_RUNNING; /* a level's, which it says */
    printf("%-28s  %-20s  %-24s  %-8s  %s%s\n", "ID", st == S_DONE ? "STATE" : "TYPE", at,
           "ATTEMPTS", stream ? "LEVEL   " : "",
           st == S_RUNNING ? "ENTRY / CONSUMER / IDLE MS" : "ENTRY / ERROR");
    for (size_t i = 0; i < n; i++) {
        const jq_dead_job_t *j = &jobs[i];
        char when[32], att[24] = "-";
        jq_cli_time(j->died_at, when, sizeof(when));
        if (j->attempts >= 0) snprintf(att, sizeof(att), "%lld", j->attempts);
        const char *kind = st == S_DONE ? field(j, "state") : j->type;
        printf("%-28s  %-20.40s  %-24s  %-8s  ", j->id, kind ? kind : "-", when, att);
        if (stream) printf("%-6s  ", field(j, "priority") ? field(j, "priority") : "normal");
        if (st == S_RUNNING)
            printf("%s  %s  %s", field(j, "entry_id"), field(j, "consumer"), field(j, "idle_ms"));
        else if (st == S_READY)
            printf("%s", field(j, "entry_id"));
        else
            for (const char *e = j->error ? j->error : "-"; *e; e++)
                putchar((unsigned char)*e < 0x20 ? ' ' : *e);
        putchar('\n');
    }
}

/* One job: {"id", "queue", "state", "at", fields...}; payload and result
 * decoded to JSON. */
static int print_job(const char *queue, const char *state, const jq_dead_job_t *job, int nl) {
    static const char *const skip[] = {"id", "queue", "state", "at", "payload", "result", NULL};
    const jq_field_t *enc = jq_dead_job_field(job, "enc");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char at[64];
    snprintf(at, sizeof(at), ",\"at\":%lld", job->died_at);
    int rc = msgpack_sbuffer_write(&sb, "{\"id\":", 6);
    if (rc == 0) rc = jq_codec_json_string(&sb, job->id, strlen(job->id));
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, ",\"queue\":", 9);
    if (rc == 0) rc = jq_codec_json_string(&sb, queue, strlen(queue));
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, ",\"state\":", 9);
    if (rc == 0) rc = jq_codec_json_string(&sb, state, strlen(state));
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, at, strlen(at));
    if (rc == 0) rc = jq_view_fields(&sb, job, skip);
    static const char *const blobs[] = {"payload", "result"};
    for (int b = 0; b < 2 && rc == 0; b++) {
        const jq_field_t *f = jq_dead_job_field(job, blobs[b]);
        if (!f) continue;
        char head[16];
        snprintf(head, sizeof(head), ",\"%s\":", blobs[b]);
        rc = msgpack_sbuffer_write(&sb, head, strlen(head));
        if (rc == 0)
            rc = jq_view_payload_json(&sb, f->value, f->value_len,
                                      b == 0 && enc && !strcmp(enc->value, "json"));
    }
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, "}\n", nl ? 2 : 1);
    if (rc == 0) fwrite(sb.data, 1, sb.size, stdout);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int jobs_list(jq_cli_t *cli, const char *queue, state_t st, long long count,
                     const char *after, long long start, int json) {
    char err[JQ_ERR_LEN];
    jq_dead_job_t *jobs = NULL;
    size_t n = 0;
    long long total = -1;
    int rc;
    if (st == S_READY || st == S_RUNNING) {
        rc = jq_client_stream_list(cli->client, queue, st == S_RUNNING, after, count, 1, &jobs, &n,
                                   err, sizeof(err));
    } else {
        jq_set_page_t pg = {st == S_DEAD   ? JQ_SET_DEAD
                            : st == S_DONE ? JQ_SET_DONE
                                           : JQ_SET_SCHEDULED,
                            start, count, st != S_SCHEDULED, 1};
        rc = jq_client_set_list(cli->client, queue, &pg, &jobs, &n, &total, err, sizeof(err));
    }
    if (rc < 0) {
        fprintf(stderr, "jobq jobs list: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    if (json) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",\n" : "\n", stdout);
            if (print_job(queue, state_names[st], &jobs[i], 0) != 0) break;
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
    } else {
        print_table(st, jobs, n);
    }
    if (!json && (long long)n == count && (st == S_READY || st == S_RUNNING)) {
        /* A level's cursor names it; normal's is the bare entry id. */
        const char *lv = field(&jobs[n - 1], "priority");
        int bare = !lv || !strcmp(lv, "normal");
        fprintf(stderr, "(more: --after %s%s%s)\n", bare ? "" : lv, bare ? "" : ":",
                field(&jobs[n - 1], "entry_id"));
    } else if (!json && total > start + (long long)n)
        fprintf(stderr, "(%lld in all; more: --start %lld)\n", total, start + (long long)n);
    if (st == S_DONE && total == 0 && !json)
        fprintf(stderr, "(no done jobs indexed: `jobq jobs keep-done -q %s N` keeps the last N)\n",
                queue);
    jq_dead_jobs_free(jobs, n);
    return JQ_EXIT_OK;
}

static int jobs_show(jq_cli_t *cli, const char *queue, const char *id) {
    char err[JQ_ERR_LEN];
    jq_job_place_t at;
    jq_dead_job_t job;
    int rc = jq_client_job_show(cli->client, queue, id, &at, &job, err, sizeof(err));
    int status = JQ_EXIT_OK;
    if (rc == JQ_CLIENT_ENOTFOUND) {
        fprintf(stderr, "jobq jobs show: no job %s in queue %s\n", id, queue);
        status = JQ_EXIT_FAIL;
    } else if (rc < 0) {
        fprintf(stderr, "jobq jobs show: %s\n", err);
        status = JQ_EXIT_REDIS;
    } else {
        const char *st =
            at.where == JQ_WHERE_FINISHED && at.state[0] ? at.state : jq_where_name(at.where);
        if (print_job(queue, st, &job, 1) != 0) status = JQ_EXIT_REDIS;
    }
    jq_dead_job_destroy(&job);
    return status;
}

int jq_cli_jobs(jq_cli_t *cli, int argc, char **argv, int start) {
    if (start >= argc || !strcmp(argv[start], "-h") || !strcmp(argv[start], "--help")) {
        fputs(jobs_help, start >= argc ? stderr : stdout);
        return start >= argc ? JQ_EXIT_USAGE : JQ_EXIT_OK;
    }
    const char *sub = argv[start];
    int list = !strcmp(sub, "list"), show = !strcmp(sub, "show"), keep = !strcmp(sub, "keep-done");
    if (!list && !show && !keep) return jq_cli_usage_error("jobs", "unknown subcommand '%s'", sub);
    char cmd[24];
    snprintf(cmd, sizeof(cmd), "jobs %s", sub);
    jq_argp_t p = {argc, argv, start + 1, cmd, cli, 0, 0};
    const char *queue = jq_cli_queue(cli), *arg = NULL, *state = "ready", *after = NULL;
    long long count = 50, from = 0;
    int json = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(jobs_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            (list && (jq_argp_opt(&p, "-s", "state", &state) ||
                      jq_argp_ll(&p, "-n", "count", 1, 10000, &count) ||
                      jq_argp_opt(&p, NULL, "after", &after) ||
                      jq_argp_ll(&p, NULL, "start", 0, 1LL << 40, &from) ||
                      jq_argp_set(&p, NULL, "json", &json))) ||
            jq_argp_unknown(&p))
            continue;
        if (list || arg) return jq_cli_usage_error(cmd, "unexpected argument '%s'", argv[p.i]);
        arg = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (jq_cli_check_name(cmd, "queue name", queue) < 0) return JQ_EXIT_USAGE;
    state_t st = S_N;
    for (int i = 0; i < S_N; i++)
        if (!strcmp(state, state_names[i])) st = (state_t)i;
    if (st == S_N)
        return jq_cli_usage_error(cmd,
                                  "--state: '%s' is not one of ready, running, scheduled, "
                                  "done, dead",
                                  state);
    if (after && st != S_READY && st != S_RUNNING)
        return jq_cli_usage_error(cmd, "--after pages ready and running jobs; the others page "
                                       "with --start");
    if (from && (st == S_READY || st == S_RUNNING))
        return jq_cli_usage_error(cmd, "--start pages scheduled, done and dead jobs; ready and "
                                       "running page with --after");
    if (after && jq_cli_check_name(cmd, "entry id", after) < 0) return JQ_EXIT_USAGE;
    const char *colon = after ? strchr(after, ':') : NULL;
    jq_prio_t lv;
    if (colon && (jq_prio_parse(after, (size_t)(colon - after), &lv) != 0 || !colon[1] ||
                  strchr(colon + 1, ':')))
        return jq_cli_usage_error(cmd, "--after: '%s' is not ENTRY or LEVEL:ENTRY", after);
    long long keep_n = 0;
    if (show && !arg) return jq_cli_usage_error(cmd, "missing ID");
    if (show && jq_cli_check_name(cmd, "job id", arg) < 0) return JQ_EXIT_USAGE;
    if (keep) {
        char *end;
        keep_n = arg ? strtoll(arg, &end, 10) : -1;
        if (!arg || *end || keep_n < 0 || keep_n > 1000000)
            return jq_cli_usage_error(cmd, "want N, from 0 (no index) to 1000000");
    }
    int status = jq_cli_connect(cli);
    if (status) return status;
    if (list) return jobs_list(cli, queue, st, count, after, from, json);
    if (show) return jobs_show(cli, queue, arg);
    char err[JQ_ERR_LEN];
    if (jq_client_keep_done(cli->client, queue, keep_n, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq %s: %s\n", cmd, err);
        return JQ_EXIT_REDIS;
    }
    if (keep_n)
        printf("queue %s keeps its last %lld done jobs (from the next second)\n", queue, keep_n);
    else
        printf("queue %s keeps no index of done jobs\n", queue);
    return JQ_EXIT_OK;
}
