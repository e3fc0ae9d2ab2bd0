#ifndef JQ_METRICS_H
#define JQ_METRICS_H

/* GET /metrics on the master's HTTP server: the Prometheus text format
 * (version 0.0.4) of
 *   - every queue of <p>:queues: gauges (ready, running, scheduled, dead,
 *     paused), counters (processed, failed, retried, dead) and the wait and
 *     run histograms of PROTOCOL §7, read from Redis, so that every replica
 *     reports the same values (aggregate with max by (queue));
 *   - this master's own workers (their heartbeat hashes whose master_pid is
 *     this process on this host), labelled worker="<host>:<pid>": RSS, CPU
 *     seconds, busy io/cpu, threads, cpu backlog, event-loop lag, open fds;
 *   - this master's own state (jq_metrics_local_t).
 * Redis is read through libjobq's watch snapshot with a blocking client on
 * libuv's threadpool, so the master's loop never waits for Redis; scrapes
 * that arrive while a read is in flight share its answer. When Redis cannot
 * be read, the answer still comes, with the local series and
 * jobq_redis_read_ok 0. */

#include <uv.h>

#include "httpd.h"
#include "options.h"

typedef struct jq_metrics jq_metrics_t;

/* The master's own figures, filled in on the loop at each scrape. */
typedef struct jq_metrics_local {
    long long workers_configured; /* --workers */
    long long workers_serving;    /* slots with a ready, non-draining worker */
    long long worker_starts;      /* workers spawned since the master started */
    long long worker_crashes;     /* exits by a signal or a non-zero status */
    long long worker_recycles;    /* recycle requests (max jobs, RSS, stuck thread) */
    int redis_up;                 /* the master's connection is up */
} jq_metrics_local_t;

typedef void (*jq_metrics_local_fn)(jq_metrics_local_t *out, void *data);

/* Registers GET /metrics on http. opt and http are borrowed and must
 * outlive the returned object; local(out, data) is called on the loop at
 * each scrape. Returns NULL when out of memory or the route table is full. */
jq_metrics_t *jq_metrics_new(uv_loop_t *loop, jq_httpd_t *http, const jq_options_t *opt,
                             jq_metrics_local_fn local, void *data);

/* Stops answering (later scrapes get 503) and frees m once no read is in
 * flight. jq_metrics_close(NULL) does nothing. */
void jq_metrics_close(jq_metrics_t *m);

#endif
