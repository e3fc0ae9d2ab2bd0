/* `jobq stats`: one screen of what PROTOCOL §7 keeps, read through
 * libjobq's watch snapshot (the same code as `jobq top`, /metrics and the
 * dashboard): a row per queue, then a row per live worker; or (--json) the
 * snapshot's stable JSON shape. */

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jobq/watch.h"
#include "watch_int.h"

static const char stats_help[] =
    "usage: jobq stats [-q QUEUE] [--json]\n"
    "\n"
    "Per queue (every queue in <prefix>:queues, or QUEUE): ready (not yet\n"
    "taken), running (taken, not finished), scheduled (delayed or waiting for\n"
    "a retry), dead (in the dead set), paused, the totals processed and failed\n"
    "(attempts), jobs/s over the last minute, and the wait (enqueue to start)\n"
    "and run times at the 50th and 99th percentiles of the latency buckets.\n"
    "Then per live worker: host, pid, queues, busy io slots and cpu threads,\n"
    "cpu backlog, RSS, CPU time, event-loop lag and when it was last seen.\n"
    "A queue that a worker found broken (its keys refused by Redis) gets a\n"
    "line below the table, with Redis's error. Schedules (the first 8 of\n"
    "each queue by next tick) follow, with how late a tick not fired yet is,\n"
    "then the limits (rate, concurrency, leases held, and the ready jobs a\n"
    "limit holds back now).\n"
    "--json prints one object {\"at\",\"queues\":[...],\"workers\":[...]}\n"
    "(docs/CLI.md has every field; a broken queue has \"broken\": {...}),\n"
    "each queue with up to 20 of its running jobs and their progress.\n";

/* Running jobs shown per queue by --json. */
#define JQ_STATS_RUNNING 20

static int name_width(const jq_watch_t *w) {
    int width = 5;
    for (size_t i = 0; i < w->nqueues; i++) {
        int n = (int)strlen(w->queues[i].s.queue);
        if (n > width) width = n;
    }
    return width;
}

static void print_queues(const jq_watch_t *w) {
    int qw = name_width(w);
    printf("%-*s %7s %7s %7s %6s %3s %9s %7s %7s %7s %7s %7s %7s\n", qw, "QUEUE", "READY",
           "RUNNING", "SCHED", "DEAD", "PSD", "PROCESSED", "FAILED", "JOBS/S", "WAIT50", "WAIT99",
           "RUN50", "RUN99");
    for (size_t i = 0; i < w->nqueues; i++) {
        const jq_queue_watch_t *q = &w->queues[i];
        const jq_queue_stats_t *s = &q->s;
        char b[11][24];
        printf("%-*s %7s %7s %7s %6s %3s %9s %7s %7s %7s %7s %7s %7s\n", qw, s->queue,
               jq_fmt_count(s->ready, b[0], 24), jq_fmt_count(s->running, b[1], 24),
               jq_fmt_count(s->scheduled, b[2], 24), jq_fmt_count(s->dead, b[3], 24),
               s->paused ? "yes" : "no", jq_fmt_count(s->processed, b[4], 24),
               jq_fmt_count(s->failed, b[5], 24), jq_fmt_rate(q->rate, b[6], 24),
               jq_fmt_ms(jq_latency_quantile(&q->wait, 0.5), b[7], 24),
               jq_fmt_ms(jq_latency_quantile(&q->wait, 0.99), b[8], 24),
               jq_fmt_ms(jq_latency_quantile(&q->run, 0.5), b[9], 24),
               jq_fmt_ms(jq_latency_quantile(&q->run, 0.99), b[10], 24));
    }
}

/* The schedules of the queues that have any (the first few of each by
 * next tick; `jobq schedule list` has them all), with how late a tick
 * not fired yet is: no consumer serves the queue, or they are stalled. */
static void print_schedules(const jq_watch_t *w) {
    int header = 0;
    for (size_t i = 0; i < w->nqueues; i++) {
        const jq_queue_watch_t *q = &w->queues[i];
        for (int k = 0; k < q->nsched; k++) {
            char next[40], lag[24];
            long long n = q->sched[k].next_ms;
            if (!header++) printf("\n%-16s %-16s %-24s %7s\n", "SCHEDULE", "QUEUE", "NEXT", "LAG");
            jq_cli_time(n, next, sizeof(next));
            printf("%-16s %-16s %-24s %7s\n", q->sched[k].name, q->s.queue, next,
                   jq_fmt_ms(n > 0 && n < w->at_ms ? (double)(w->at_ms - n) : 0, lag, 24));
        }
        if (q->schedules > q->nsched)
            printf("%-16s %-16s (%lld more: jobq schedule list -q %s)\n", "...", q->s.queue,
                   q->schedules - q->nsched, q->s.queue);
    }
}

static void print_workers(const jq_watch_t *w) {
    if (w->nworkers == 0) {
        printf("\nno live workers\n");
        return;
    }
    printf("\n%-16s %7s %-12s %5s %5s %7s %7s %8s %7s %6s\n", "HOST", "PID", "QUEUES", "IO", "CPU",
           "BACKLOG", "RSS", "CPU_TIME", "LAG", "SEEN");
    for (size_t i = 0; i < w->nworkers; i++) {
        const jq_worker_watch_t *k = &w->workers[i];
        char cpu[24], rss[24], ct[24], lag[24], seen[24];
        snprintf(cpu, sizeof(cpu), "%lld/%lld", k->busy_cpu, k->threads);
        printf("%-16.16s %7lld %-12.12s %5lld %5s %7lld %7s %8s %7s %6s%s\n", k->host, k->pid,
               k->queues, k->busy_io, cpu, k->cpu_backlog, jq_fmt_bytes(k->rss_bytes, rss, 24),
               jq_fmt_ms((double)k->cpu_ms, ct, 24), jq_fmt_ms(k->loop_lag_us / 1000.0, lag, 24),
               jq_fmt_ms((double)(w->at_ms - k->last_seen_ms), seen, 24),
               k->draining ? " draining" : "");
    }
}

/* The queues with a limit (or a live backoff): its settings, the leases
 * held now, and the ready jobs it holds back (PROTOCOL §9). */
static void print_limits(const jq_watch_t *w) {
    int header = 0, qw = name_width(w);
    for (size_t i = 0; i < w->nqueues; i++) {
        const jq_queue_watch_t *q = &w->queues[i];
        if (!q->limit_rate && !q->limit_concurrency && !q->backoff_ms) continue;
        if (!header++)
            printf("\n%-*s %-10s %11s %6s %9s %s\n", qw, "LIMIT", "RATE", "CONCURRENCY", "LEASES",
                   "HELD_BACK", "BLOCKED_BY");
        char rate[64], conc[24] = "-", by[64];
        if (q->limit_concurrency) snprintf(conc, sizeof(conc), "%lld", q->limit_concurrency);
        printf("%-*s %-10s %11s %6lld %9lld %s\n", qw, q->s.queue,
               jq_cli_fmt_limit_rate(q->limit_rate, q->limit_period_ms, rate, sizeof(rate)), conc,
               q->leases, q->held_back, jq_cli_fmt_blocked(q->blocked, by, sizeof(by)));
    }
}

/* One line per broken queue, with Redis's error, below the table. */
static void print_broken(jq_cli_t *cli, const jq_watch_t *w) {
    jq_broken_t b;
    for (size_t i = 0; i < w->nqueues; i++) {
        char since[40];
        if (!jq_watch_broken(cli->client, w->queues[i].s.queue, &b)) continue;
        jq_cli_time(b.since, since, sizeof(since));
        printf("\nqueue %s is BROKEN since %s: %s (seen by worker %s; left out of reads until "
               "fixed)\n",
               w->queues[i].s.queue, since, b.error, b.worker);
    }
}

/* --json: the snapshot's object, each queue with "broken": null, or
 * {"error", "since", "worker"} while a worker reports it broken. */
static int print_json(jq_cli_t *cli, const jq_watch_t *w) {
    json_object *root = jq_watch_to_json(w), *qs = NULL;
    jq_broken_t b;
    json_object_object_get_ex(root, "queues", &qs);
    for (size_t i = 0; i < w->nqueues && qs; i++) {
        json_object *o = NULL;
        if (jq_watch_broken(cli->client, w->queues[i].s.queue, &b)) {
            o = json_object_new_object();
            json_object_object_add(o, "error", json_object_new_string(b.error));
            json_object_object_add(o, "since", json_object_new_int64(b.since));
            json_object_object_add(o, "worker", json_object_new_string(b.worker));
        }
        json_object_object_add(json_object_array_get_idx(qs, i), "broken", o);
    }
    char err[JQ_ERR_LEN];
    if (jq_watch_add_running(cli->client, w, root, JQ_STATS_RUNNING, err, sizeof(err)) < 0) {
        json_object_put(root);
        fprintf(stderr, "jobq: stats: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    if (jq_watch_print_json(root, stdout) < 0) return JQ_EXIT_REDIS;
    return JQ_EXIT_OK;
}

int jq_cli_stats(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "stats", cli, 0, 0};
    const char *queue = cli->queue;
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
    jq_watch_t w;
    if (jq_watch_read(cli->client, queue, &w, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: stats: %s\n", err);
        jq_watch_destroy(&w);
        return JQ_EXIT_REDIS;
    }
    if (json) {
        status = print_json(cli, &w);
    } else {
        print_queues(&w);
        print_schedules(&w);
        print_limits(&w);
        print_broken(cli, &w);
        print_workers(&w);
    }
    jq_watch_destroy(&w);
    return status;
}
