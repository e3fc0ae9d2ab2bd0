#ifndef JQ_WATCH_H
#define JQ_WATCH_H

/* Watching the queues (PROTOCOL §7): one snapshot of every queue's
 * figures, rates and latency histograms, and of the live workers, read
 * over a jq_client_t in two pipelined round trips. `jobq stats`, `jobq
 * top`, the consumer's /metrics and the web dashboard all read through
 * here, so they agree with each other and with the protocol.
 *
 * Like the rest of libjobq: not thread-safe per client, 0 or -1 with a
 * sentence in err. */

#include <stdint.h>
#include <stdio.h>

#include "jobq/jobq.h"

/* The latency buckets of §7: 15 upper bounds in ms, then +Inf. */
#define JQ_LAT_BUCKETS 16
#define JQ_WATCH_SCHEDULES 8

/* The upper bound of bucket i in ms (1, 2, 5, ..., 60000), or -1 for the
 * last one (+Inf) and any i out of range. */
long long jq_latency_bound_ms(int i);

typedef struct jq_latency {
    long long bucket[JQ_LAT_BUCKETS]; /* jobs per bucket, NOT cumulative;
                                         the last is over 60000 ms */
    long long count;                  /* <kind>:count */
    long long sum_us;                 /* <kind>:sum_us */
} jq_latency_t;

typedef struct jq_queue_watch {
    jq_queue_stats_t s; /* ready, running, scheduled, dead, paused, totals */
    /* From the per-minute hashes: the current minute so far and the one
     * before it, for rates over the last 60 s. */
    long long processed_min[2], failed_min[2]; /* [0] current, [1] previous */
    double rate;                               /* processed jobs/s over the last 60 s */
    double fail_rate;                          /* failed attempts/s over the last 60 s */
    jq_latency_t wait, run;                    /* enqueue -> start, start -> end */
    long long cancelled;                       /* the totals' `cancelled` (PROTOCOL §11): jobs
                            ended cancelled. Added at the end: the array
                            is the library's, never the caller's */
    /* Schedules (PROTOCOL §13): how many the queue has, and the first
     * JQ_WATCH_SCHEDULES of them by next tick (0: not computed yet). */
    long long schedules;
    struct {
        char name[65];
        long long next_ms;
    } sched[JQ_WATCH_SCHEDULES];
    int nsched;
    /* How late the most overdue tick is (the snapshot's time minus the
     * earliest next tick, when that has passed), 0 when none is: a tick is
     * fired within about 250 ms while a consumer serves the queue. */
    long long sched_lag_ms;
    /* Limits (PROTOCOL §9), read with the rest: the <p>:{q}:limit hash's
     * rate per period_ms and concurrency (0: no such limit), the leases
     * held now by every worker (unexpired members of <p>:{q}:leases), and
     * how long its backoff key still lives (ms, 0: none). held_back is the
     * queue's ready jobs while a limit keeps them from starting (its
     * concurrency's slots all leased, its rate's bucket empty, or its
     * backoff alive: the bits of `blocked`), else 0: a gauge. */
    long long limit_rate, limit_period_ms, limit_concurrency;
    long long leases, backoff_ms, held_back;
    int blocked; /* JQ_BLOCKED_* */
} jq_queue_watch_t;

#define JQ_BLOCKED_CONCURRENCY 1
#define JQ_BLOCKED_RATE 2
#define JQ_BLOCKED_BACKOFF 4

typedef struct jq_worker_watch {
    char id[320]; /* <host>:<pid>, as in <p>:workers */
    char host[256];
    char queues[1024]; /* comma-separated */
    long long pid, master_pid;
    long long last_seen_ms; /* score in <p>:workers: last heartbeat */
    long long started_at;   /* ms since the epoch */
    long long processed, failed;
    long long busy_io, busy_cpu, threads, cpu_backlog;
    long long rss_bytes, cpu_ms, open_fds, loop_lag_us;
    int draining;
} jq_worker_watch_t;

typedef struct jq_watch {
    int64_t at_ms;            /* when it was read (this machine's clock) */
    jq_queue_watch_t *queues; /* owned, sorted by name */
    size_t nqueues;
    jq_worker_watch_t *workers; /* owned, live workers sorted by id */
    size_t nworkers;
} jq_watch_t;

/* Reads a snapshot into *w: every queue of <p>:queues (or just `queue`
 * when not NULL; invalid names in the set are skipped) and every worker
 * whose heartbeat is in <p>:workers and whose hash still exists. The caller
 * releases *w with jq_watch_destroy() whatever this returns. */
int jq_watch_read(jq_client_t *c, const char *queue, jq_watch_t *w, char *err, size_t errlen);

void jq_watch_destroy(jq_watch_t *w);

/* The q-quantile (0 < q < 1) of a histogram in ms, interpolated linearly
 * inside its bucket as Prometheus' histogram_quantile() does (the first
 * bucket from 0; a quantile that falls in the +Inf bucket is reported as
 * the last finite bound, 60000). -1 when the histogram is empty. */
double jq_latency_quantile(const jq_latency_t *l, double q);

/* Writes *w as the JSON of `jobq stats --json` (docs/CLI.md has the shape,
 * which is kept stable: fields are only ever added). Returns 0, or -1 if
 * the stream failed. */
int jq_watch_json(const jq_watch_t *w, FILE *out);

/* As jq_watch_json, each queue with `running_jobs` too: up to per_queue
 * (1 to 100) of its running jobs, read now over c (PROTOCOL §7, "Running
 * jobs": the group's pending entries of each level's stream, then their
 * fields and result hashes, two more pipelined round trips, bounded by
 * per_queue whatever the queue holds). A queue with nothing running costs
 * nothing. Returns 0, -1 with err set when Redis failed (nothing is
 * written), or -2 if the stream failed. */
int jq_watch_json_running(jq_client_t *c, const jq_watch_t *w, int per_queue, FILE *out, char *err,
                          size_t errlen);

#endif
