/* `jobq schedule add|list|rm|pause|resume`: schedules (PROTOCOL §13) over
 * libjobq's jq_client_schedule_*. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cron.h"
#include "job.h"

static const char schedule_help[] =
    "usage: jobq schedule add NAME [-q QUEUE] (--every DURATION | --cron 'MIN HOUR DOM MON DOW'\n"
    "                         [--tz ZONE]) TYPE [PAYLOAD_JSON | @FILE] [options]\n"
    "       jobq schedule list [-q QUEUE] [--json]\n"
    "       jobq schedule rm|pause|resume [-q QUEUE] NAME\n"
    "\n"
    "add: enqueue a job of TYPE at each tick, exactly once per tick however\n"
    "many consumers run; an existing NAME is replaced. DURATION is a whole\n"
    "number and ms, s, m, h or d (500ms, 10s, 5m, 1h); its ticks fall on whole\n"
    "multiples of it since the epoch. A cron expression is read in ZONE (a\n"
    "tzdata name such as Europe/Berlin; default UTC). After a time without\n"
    "any consumer the missed ticks run once, not once each. Each job carries\n"
    "the fields `schedule NAME` and `tick <ms>` and the id NAME:<tick>.\n"
    "Options of the job, as for enqueue: --json (@FILE holds JSON text),\n"
    "--max-attempts N, --timeout-ms N, --result-ttl S.\n"
    "list: each schedule with its next tick, its last one and whether it is\n"
    "paused (all queues unless -q). rm, pause, resume: exit 1 when NAME does\n"
    "not exist. A paused schedule's ticks pass without a job.\n";

static int cmd_add(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "schedule add", cli, 0, 0};
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    jq_schedule_t s = {jq_cli_queue(cli), NULL, 0, NULL, NULL};
    const char *pos[3] = {NULL, NULL, NULL}, *every = NULL;
    int npos = 0, json_file = 0;
    long long ttl = -1;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(schedule_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &s.queue) ||
            jq_argp_opt(&p, NULL, "every", &every) || jq_argp_opt(&p, NULL, "cron", &s.cron) ||
            jq_argp_opt(&p, NULL, "tz", &s.tz) || jq_argp_set(&p, NULL, "json", &json_file) ||
            jq_argp_job(&p, &o, &ttl) || jq_argp_unknown(&p))
            continue;
        if (npos == 3) return jq_cli_usage_error(p.cmd, "unexpected argument '%s'", argv[p.i]);
        pos[npos++] = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!pos[0]) return jq_cli_usage_error(p.cmd, "missing NAME");
    if (!pos[1]) return jq_cli_usage_error(p.cmd, "missing TYPE");
    if (!every == !s.cron)
        return jq_cli_usage_error(p.cmd, "give one of --every DURATION and --cron EXPRESSION");
    if (s.tz && every) return jq_cli_usage_error(p.cmd, "--tz goes with --cron only");
    char err[JQ_ERR_LEN];
    if (every) {
        int64_t ms;
        if (jq_duration_parse(every, &ms, err, sizeof(err)) < 0)
            return jq_cli_usage_error(p.cmd, "--every: %s", err);
        s.every_ms = ms;
    } else {
        /* Checked here too, so that a bad one is a usage error (2). */
        jq_cron_t c;
        jq_tz_t *tz;
        if (jq_cron_parse(&c, s.cron, err, sizeof(err)) < 0)
            return jq_cli_usage_error(p.cmd, "--cron: %s", err);
        if (!(tz = jq_tz_load(s.tz, err, sizeof(err))))
            return jq_cli_usage_error(p.cmd, "--tz: %s", err);
        int64_t next = jq_cron_next(&c, tz, jq_now_ms());
        jq_tz_free(tz);
        if (next < 0) return jq_cli_usage_error(p.cmd, "--cron: '%s' never fires", s.cron);
    }
    if (jq_cli_check_name(p.cmd, "queue name", s.queue) < 0) return JQ_EXIT_USAGE;
    if (!jq_schedule_name_valid(pos[0]))
        return jq_cli_usage_error(p.cmd,
                                  "bad schedule name '%s' (want 1 to %d bytes of "
                                  "[A-Za-z0-9_.-])",
                                  pos[0], JQ_SCHEDULE_NAME_MAX);
    s.name = pos[0];
    o.queue = s.queue;
    o.result_ttl = ttl;
    jq_cli_payload_t pl = {0};
    msgpack_sbuffer_init(&pl.sb);
    int status = pos[2] ? jq_cli_payload(p.cmd, pos[2], json_file, &pl) : JQ_EXIT_OK;
    if (status == JQ_EXIT_OK) status = jq_cli_connect(cli);
    long long first = 0;
    if (status == JQ_EXIT_OK && jq_client_schedule_add(cli->client, &s, pos[1], pl.data, pl.size,
                                                       &o, &first, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: schedule add: %s\n", err);
        status = JQ_EXIT_REDIS;
    }
    jq_cli_payload_free(&pl);
    if (status == JQ_EXIT_OK) {
        char when[32];
        jq_cli_time(first, when, sizeof(when));
        printf("%s: first tick %s\n", s.name, when);
    }
    return status;
}

/* What the schedule follows: "every 1s" or "cron 0 9 * * 1-5 Europe/Berlin". */
static void spec(const jq_schedule_info_t *s, char *buf, size_t cap) {
    if (s->every_ms > 0 && s->every_ms % 1000)
        snprintf(buf, cap, "every %lldms", s->every_ms);
    else if (s->every_ms > 0)
        snprintf(buf, cap, "every %llds", s->every_ms / 1000);
    else
        snprintf(buf, cap, "cron %s%s%s", s->cron ? s->cron : "?", s->tz ? " " : "",
                 s->tz ? s->tz : "");
}

static void print_table(const jq_schedule_info_t *v, size_t n) {
    printf("%-12s  %-16s  %-28s  %-24s  %-24s  %-6s  %s\n", "QUEUE", "NAME", "WHEN", "NEXT",
           "LAST_TICK", "PAUSED", "TYPE");
    for (size_t i = 0; i < n; i++) {
        char when[96], next[32], last[32];
        spec(&v[i], when, sizeof(when));
        jq_cli_time(v[i].next_ms, next, sizeof(next));
        jq_cli_time(v[i].last_tick_ms, last, sizeof(last));
        printf("%-12s  %-16s  %-28s  %-24s  %-24s  %-6s  %s%s%s\n", v[i].queue, v[i].name, when,
               next, last, v[i].paused ? "yes" : "no", v[i].type ? v[i].type : "-",
               v[i].error ? "  error: " : "", v[i].error ? v[i].error : "");
    }
}

static void json_ll(const char *key, long long v, int null_if_zero) {
    printf(",\"%s\":", key);
    if (null_if_zero && v <= 0)
        fputs("null", stdout);
    else
        printf("%lld", v);
}

static void print_json(const jq_schedule_info_t *v, size_t n, long long now) {
    fputs("[", stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n{\"queue\":" : "\n{\"queue\":", stdout);
        jq_json_cstr(stdout, v[i].queue);
        fputs(",\"name\":", stdout);
        jq_json_cstr(stdout, v[i].name);
        json_ll("every_ms", v[i].every_ms, 1);
        fputs(",\"cron\":", stdout);
        jq_json_cstr(stdout, v[i].cron);
        fputs(",\"tz\":", stdout);
        jq_json_cstr(stdout, v[i].tz);
        fputs(",\"type\":", stdout);
        jq_json_cstr(stdout, v[i].type);
        printf(",\"paused\":%s", v[i].paused ? "true" : "false");
        json_ll("next_ms", v[i].next_ms, 1);
        /* How late the next tick is, when it is overdue: no consumer
         * serves the queue, or they cannot keep up. */
        json_ll("lag_ms", v[i].next_ms > 0 && now > v[i].next_ms ? now - v[i].next_ms : 0, 0);
        json_ll("last_tick_ms", v[i].last_tick_ms, 1);
        json_ll("last_fired_ms", v[i].last_fired_ms, 1);
        fputs(",\"last_job\":", stdout);
        jq_json_cstr(stdout, v[i].last_job);
        fputs(",\"error\":", stdout);
        jq_json_cstr(stdout, v[i].error);
        fputs("}", stdout);
    }
    fputs(n ? "\n]\n" : "]\n", stdout);
}

static int cmd_list(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "schedule list", cli, 0, 0};
    const char *queue = cli->queue; /* NULL: every queue */
    int json = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(schedule_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            jq_argp_set(&p, NULL, "json", &json) || jq_argp_unknown(&p))
            continue;
        return jq_cli_usage_error(p.cmd, "unexpected argument '%s'", argv[p.i]);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (queue && jq_cli_check_name(p.cmd, "queue name", queue) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    char err[JQ_ERR_LEN], **names = NULL, *one[1] = {(char *)queue};
    size_t nq = 1, n = 0, total = 0;
    if (!queue && jq_client_queues(cli->client, &names, &nq, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: schedule list: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    jq_schedule_info_t *all = NULL;
    for (size_t i = 0; i < nq && status == JQ_EXIT_OK; i++) {
        jq_schedule_info_t *v;
        if (jq_client_schedule_list(cli->client, names ? names[i] : one[0], &v, &n, err,
                                    sizeof(err)) < 0) {
            fprintf(stderr, "jobq: schedule list: %s\n", err);
            status = JQ_EXIT_REDIS;
            break;
        }
        jq_schedule_info_t *grown = n ? realloc(all, (total + n) * sizeof(*all)) : all;
        if (n && !grown) {
            jq_schedule_infos_free(v, n);
            status = JQ_EXIT_REDIS;
            break;
        }
        all = grown;
        if (n) memcpy(all + total, v, n * sizeof(*v));
        total += n;
        free(v); /* its strings now belong to all */
    }
    if (names) jq_client_queues_free(names, nq);
    if (status == JQ_EXIT_OK) {
        if (json)
            print_json(all, total, (long long)jq_now_ms());
        else
            print_table(all, total);
    }
    jq_schedule_infos_free(all, total);
    return status;
}

/* rm, pause, resume: one NAME. */
static int cmd_one(jq_cli_t *cli, int argc, char **argv, int start, const char *what) {
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "schedule %s", what);
    jq_argp_t p = {argc, argv, start, cmd, cli, 0, 0};
    const char *queue = jq_cli_queue(cli), *name = NULL;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(schedule_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) || jq_argp_unknown(&p))
            continue;
        if (name) return jq_cli_usage_error(cmd, "unexpected argument '%s'", argv[p.i]);
        name = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!name) return jq_cli_usage_error(cmd, "missing NAME");
    if (jq_cli_check_name(cmd, "queue name", queue) < 0) return JQ_EXIT_USAGE;
    if (!jq_schedule_name_valid(name))
        return jq_cli_usage_error(cmd, "bad schedule name '%s'", name);
    int status = jq_cli_connect(cli);
    if (status) return status;
    char err[JQ_ERR_LEN];
    int rc = !strcmp(what, "rm")
                 ? jq_client_schedule_rm(cli->client, queue, name, err, sizeof(err))
                 : jq_client_schedule_pause(cli->client, queue, name, !strcmp(what, "pause"), err,
                                            sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "jobq: %s: %s\n", cmd, err);
        return JQ_EXIT_REDIS;
    }
    if (rc == 0) {
        fprintf(stderr, "jobq: %s: no schedule '%s' in queue %s\n", cmd, name, queue);
        return JQ_EXIT_FAIL;
    }
    return JQ_EXIT_OK;
}

int jq_cli_schedule(jq_cli_t *cli, int argc, char **argv, int start) {
    if (start >= argc) {
        fputs(schedule_help, stderr);
        return JQ_EXIT_USAGE;
    }
    const char *sub = argv[start];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(schedule_help, stdout);
        return JQ_EXIT_OK;
    }
    if (!strcmp(sub, "add")) return cmd_add(cli, argc, argv, start + 1);
    if (!strcmp(sub, "list")) return cmd_list(cli, argc, argv, start + 1);
    if (!strcmp(sub, "rm") || !strcmp(sub, "pause") || !strcmp(sub, "resume"))
        return cmd_one(cli, argc, argv, start + 1, sub);
    return jq_cli_usage_error("schedule", "unknown subcommand '%s' (add, list, rm, pause, resume)",
                              sub);
}
