/* The admin subcommands of `jobq`: dead list|show|retry|delete, pause,
 * resume and stats. Tables for people, --json for scripts. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "job.h"
#include "view.h"

static const char dead_help[] =
    "usage: jobq dead list [-q QUEUE] [--json]\n"
    "       jobq dead show [-q QUEUE] ID\n"
    "       jobq dead retry [-q QUEUE] ID|--all\n"
    "       jobq dead delete [-q QUEUE] ID|--all\n"
    "\n"
    "list: id, type, attempts, died-at and error of each dead job, oldest\n"
    "first (--json: an array of objects). show: one job's hash as JSON, its\n"
    "payload decoded. retry: run the job again now. delete: drop it with its\n"
    "payload. Exit 1 when ID is not in the dead set.\n";

/* Prints text on one line: control characters become spaces. */
static void one_line(FILE *out, const char *s) {
    for (; s && *s; s++) fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
}

static void print_dead_table(const jq_dead_job_t *jobs, size_t n) {
    int wid = 2, wtype = 4;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(jobs[i].id);
        if (l > wid) wid = l;
        l = jobs[i].type ? (int)strlen(jobs[i].type) : 1;
        if (l > wtype && l <= 40) wtype = l;
    }
    printf("%-*s  %-*s  %8s  %-24s  %s\n", wid, "ID", wtype, "TYPE", "ATTEMPTS", "DIED_AT",
           "ERROR");
    for (size_t i = 0; i < n; i++) {
        char when[32], att[24] = "-";
        jq_cli_time(jobs[i].died_at, when, sizeof(when));
        if (jobs[i].attempts >= 0) snprintf(att, sizeof(att), "%lld", jobs[i].attempts);
        printf("%-*s  %-*.40s  %8s  %-24s  ", wid, jobs[i].id, wtype,
               jobs[i].type ? jobs[i].type : "-", att, when);
        one_line(stdout, jobs[i].error ? jobs[i].error : "-");
        fputc('\n', stdout);
    }
}

static void print_dead_json(const char *queue, const jq_dead_job_t *jobs, size_t n) {
    fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n{\"id\":" : "\n{\"id\":", stdout);
        jq_json_cstr(stdout, jobs[i].id);
        fputs(",\"queue\":", stdout);
        jq_json_cstr(stdout, queue);
        fputs(",\"type\":", stdout);
        jq_json_cstr(stdout, jobs[i].type);
        fputs(",\"error\":", stdout);
        jq_json_cstr(stdout, jobs[i].error);
        fputs(",\"attempts\":", stdout);
        if (jobs[i].attempts >= 0)
            printf("%lld", jobs[i].attempts);
        else
            fputs("null", stdout);
        printf(",\"died_at\":%lld}", jobs[i].died_at);
    }
    fputs(n ? "\n]\n" : "]\n", stdout);
}

/* One dead job as a JSON object: id, queue, died_at, then every field of
 * its hash (view.h), the payload decoded in full. */
static int print_dead_job(const char *queue, const jq_dead_job_t *job) {
    static const char *const skip[] = {"id", "queue", "died_at", NULL};
    const jq_field_t *enc = jq_dead_job_field(job, "enc");
    const jq_field_t *payload = jq_dead_job_field(job, "payload");
    char head[64];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    snprintf(head, sizeof(head), ",\"died_at\":%lld", job->died_at);
    int rc = msgpack_sbuffer_write(&sb, "{\"id\":", 6);
    if (rc == 0) rc = jq_codec_json_string(&sb, job->id, strlen(job->id));
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, ",\"queue\":", 9);
    if (rc == 0) rc = jq_codec_json_string(&sb, queue, strlen(queue));
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, head, strlen(head));
    if (rc == 0) rc = jq_view_fields(&sb, job, skip);
    if (rc == 0 && payload) {
        rc = msgpack_sbuffer_write(&sb, ",\"payload\":", 11);
        if (rc == 0)
            rc = jq_view_payload_json(&sb, payload->value, payload->value_len,
                                      enc && !strcmp(enc->value, "json"));
    }
    if (rc == 0) rc = msgpack_sbuffer_write(&sb, "}\n", 2);
    if (rc == 0) fwrite(sb.data, 1, sb.size, stdout);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* retry / delete of one id or --all. */
static int dead_change(jq_cli_t *cli, const char *queue, const char *id, int all, int retry) {
    char err[JQ_ERR_LEN];
    const char *verb = retry ? "retried" : "deleted";
    if (all) {
        size_t done = 0;
        int rc = retry ? jq_client_dead_retry_all(cli->client, queue, &done, err, sizeof(err))
                       : jq_client_dead_delete_all(cli->client, queue, &done, err, sizeof(err));
        printf("%s %zu dead job%s of queue %s\n", verb, done, done == 1 ? "" : "s", queue);
        if (rc < 0) {
            fprintf(stderr, "jobq: dead %s: %s\n", retry ? "retry" : "delete", err);
            return JQ_EXIT_REDIS;
        }
        return JQ_EXIT_OK;
    }
    int rc = retry ? jq_client_dead_retry(cli->client, queue, id, err, sizeof(err))
                   : jq_client_dead_delete(cli->client, queue, id, err, sizeof(err));
    if (rc == JQ_CLIENT_ENOTFOUND) {
        fprintf(stderr, "jobq: no dead job %s in queue %s\n", id, queue);
        return JQ_EXIT_FAIL;
    }
    if (rc < 0) {
        fprintf(stderr, "jobq: dead %s: %s\n", retry ? "retry" : "delete", err);
        return JQ_EXIT_REDIS;
    }
    printf("%s %s\n", verb, id);
    return JQ_EXIT_OK;
}

static int dead_show(jq_cli_t *cli, const char *queue, const char *id) {
    char err[JQ_ERR_LEN];
    jq_dead_job_t job;
    int rc = jq_client_dead_show(cli->client, queue, id, &job, err, sizeof(err));
    if (rc == JQ_CLIENT_ENOTFOUND) {
        fprintf(stderr, "jobq: no dead job %s in queue %s\n", id, queue);
        return JQ_EXIT_FAIL;
    }
    if (rc < 0) {
        fprintf(stderr, "jobq: dead show: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    rc = print_dead_job(queue, &job);
    jq_dead_job_destroy(&job);
    if (rc < 0) {
        fprintf(stderr, "jobq: dead show: out of memory\n");
        return JQ_EXIT_REDIS;
    }
    return JQ_EXIT_OK;
}

static int dead_list(jq_cli_t *cli, const char *queue, int json) {
    char err[JQ_ERR_LEN];
    jq_dead_job_t *jobs;
    size_t n;
    if (jq_client_dead_list(cli->client, queue, 0, 0, &jobs, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: dead list: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    if (json)
        print_dead_json(queue, jobs, n);
    else
        print_dead_table(jobs, n);
    jq_dead_jobs_free(jobs, n);
    return JQ_EXIT_OK;
}

int jq_cli_dead(jq_cli_t *cli, int argc, char **argv, int start) {
    if (start >= argc) return jq_cli_usage_error("dead", "missing list, show, retry or delete");
    const char *sub = argv[start];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        fputs(dead_help, stdout);
        return JQ_EXIT_OK;
    }
    int list = !strcmp(sub, "list"), show = !strcmp(sub, "show");
    int retry = !strcmp(sub, "retry"), del = !strcmp(sub, "delete");
    if (!list && !show && !retry && !del)
        return jq_cli_usage_error("dead", "unknown subcommand '%s'", sub);
    char cmd[16];
    snprintf(cmd, sizeof(cmd), "dead %s", sub);
    jq_argp_t p = {argc, argv, start + 1, cmd, cli, 0, 0};
    const char *queue = jq_cli_queue(cli), *id = NULL;
    int json = 0, all = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(dead_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            (list && jq_argp_set(&p, NULL, "json", &json)) ||
            ((retry || del) && jq_argp_set(&p, NULL, "all", &all)) || jq_argp_unknown(&p))
            continue;
        if (list || id) return jq_cli_usage_error(cmd, "unexpected argument '%s'", argv[p.i]);
        id = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!list && !id && !all)
        return jq_cli_usage_error(cmd, show ? "missing ID" : "missing ID or --all");
    if (id && all) return jq_cli_usage_error(cmd, "give an ID or --all, not both");
    if (jq_cli_check_name(cmd, "queue name", queue) < 0 ||
        (id && jq_cli_check_name(cmd, "job id", id) < 0))
        return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    if (retry || del) return dead_change(cli, queue, id, all, retry);
    return show ? dead_show(cli, queue, id) : dead_list(cli, queue, json);
}

int jq_cli_pause(jq_cli_t *cli, int argc, char **argv, int start, int pause) {
    const char *cmd = pause ? "pause" : "resume";
    jq_argp_t p = {argc, argv, start, cmd, cli, 0, 0};
    const char *queue = NULL, *opt = cli->queue;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            printf("usage: jobq %s [-q] QUEUE\n\n%s\n", cmd,
                   pause ? "Consumers take no new jobs from QUEUE (within about 100 ms);\n"
                           "running jobs finish."
                         : "Consumers take jobs from QUEUE again.");
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &opt) || jq_argp_unknown(&p))
            continue;
        if (queue) return jq_cli_usage_error(cmd, "unexpected argument '%s'", argv[p.i]);
        queue = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (queue && opt) return jq_cli_usage_error(cmd, "give the queue once");
    if (!queue) queue = opt;
    if (!queue) return jq_cli_usage_error(cmd, "missing QUEUE");
    if (jq_cli_check_name(cmd, "queue name", queue) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    char err[JQ_ERR_LEN];
    int rc = pause ? jq_client_pause(cli->client, queue, err, sizeof(err))
                   : jq_client_resume(cli->client, queue, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "jobq: %s: %s\n", cmd, err);
        return JQ_EXIT_REDIS;
    }
    printf("%s %s\n", pause ? "paused" : "resumed", queue);
    return JQ_EXIT_OK;
}

/* What jq_client_cancel found, in words and an exit status: 0 cancelled
 * (or asked of the workers), 1 already ended. */
static int cancel_print(const char *queue, const char *id, const char *state, int json) {
    const char *ended = strncmp(state, "ended:", 6) == 0 ? state + 6 : NULL;
    const char *now = ended ? ended : strcmp(state, "cancelled") == 0 ? "cancelled" : "cancelling";
    if (json) {
        printf("{\"id\":");
        jq_json_cstr(stdout, id);
        printf(",\"queue\":");
        jq_json_cstr(stdout, queue);
        printf(",\"state\":\"%s\",\"ended_before\":%s}\n", now, ended ? "true" : "false");
    } else if (ended) {
        printf("job %s had already ended: %s\n", id, ended);
    } else if (strcmp(state, "cancelled") == 0) {
        printf("cancelled %s\n", id);
    } else {
        /* Ready or running: a worker ends it `cancelled` within about
         * 100 ms of seeing the request (at once if none runs the queue
         * now: when one starts). */
        printf("cancelling %s: the workers stop it (jobq wait %s shows the end)\n", id, id);
    }
    return ended ? JQ_EXIT_FAIL : JQ_EXIT_OK;
}

int jq_cli_cancel(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "cancel", cli, 0, 0};
    const char *queue = jq_cli_queue(cli), *id = NULL;
    int json = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            printf("usage: jobq cancel [-q QUEUE] ID [--json]\n\n"
                   "Cancels a job: a delayed or retrying one is removed at once, a ready\n"
                   "one never runs, a running one stops; its result says `cancelled`.\n"
                   "Exit 0 cancelled (or being stopped), 1 the job had already ended\n"
                   "(its state is printed), 2 no such job, 3 Redis error.\n");
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            jq_argp_set(&p, NULL, "json", &json) || jq_argp_unknown(&p))
            continue;
        if (id) return jq_cli_usage_error("cancel", "unexpected argument '%s'", argv[p.i]);
        id = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!id) return jq_cli_usage_error("cancel", "missing job ID");
    if (jq_cli_check_name("cancel", "queue name", queue) < 0 ||
        jq_cli_check_name("cancel", "job id", id) < 0)
        return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    char err[JQ_ERR_LEN], state[32];
    int rc = jq_client_cancel(cli->client, queue, id, state, sizeof(state), err, sizeof(err));
    if (rc == JQ_CLIENT_ENOTFOUND) {
        fprintf(stderr, "jobq: cancel: no job %s in queue %s\n", id, queue);
        return JQ_EXIT_USAGE; /* 2: no such job */
    }
    if (rc < 0) {
        fprintf(stderr, "jobq: cancel: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    return cancel_print(queue, id, state, json);
}
