#ifndef JQ_WORKER_H
#define JQ_WORKER_H

/* One worker process: a libuv loop that fetches jobs from Redis in batches
 * sized to its free capacity, runs io jobs on the loop and cpu jobs on its
 * own pool, and writes their outcomes back in pipelined batches.
 *
 * A job's path through the modules. fetch, chunks, finish and trim, and
 * beside them reclaim, qhealth, sched and heartbeat, are stages with their
 * own state and a copy of what they borrow from the worker (stage.h): none
 * of them includes this header. attempt.c is the worker's own part (its
 * running and waiting lists, its pool).
 *   fetch.c     XREADGROUP sized by admission, entry -> run, decoding
 *   chunks.c    a chunked payload read and decoded
 *   attempt.c   an attempt started (loop or pool), ended, timed out
 *   finish.c    outcomes -> one MULTI/EXEC per queue (outcome.c decides
 *               what each writes, counts.c sums the counters)
 *   trim.c      acked entries trimmed from the stream
 * and beside it:
 *   worker.c    life cycle, timers, signals, draining; lends the stages
 *               what they borrow (jq_worker_env, jq_worker_*_borrow)
 *   run.c       a run's (one attempt's) allocation, payload zone, reuse, end
 *   admit.c     admission: the COUNT of each queue's next read
 *   reclaim.c   renewal and reclaim of pending entries (its own state)
 *   limit.c     rate and concurrency limits: limited queues read with permits
 *   settings.c  per-queue settings polled once a second (keep_done)
 *   qhealth.c, sched.c, ticks.c, heartbeat.c: queue health, delayed jobs,
 *               schedules, the worker's hash in <p>:workers / <p>:worker:<id>  */

#include <stdint.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <uv.h>

#include "admit.h"
#include "args.h"
#include "cancel.h"
#include "chunks.h"
#include "fetch.h"
#include "finish.h"
#include "handlers.h"
#include "heartbeat.h"
#include "job.h"
#include "limit.h"
#include "settings.h"
#include "options.h"
#include "pool.h"
#include "progress.h"
#include "qhealth.h"
#include "queue.h"
#include "rcluster.h"
#include "rconn.h"
#include "reclaim.h"
#include "reply.h"
#include "run.h"
#include "sched.h"
#include "ticks.h"
#include "stage.h"
#include "trim.h"
#include "types.h"

struct jq_worker {
    uv_loop_t loop;
    const jq_options_t *opt;
    jq_registry_t reg;
    jq_pool_t pool;
    jq_rconn_t rfetch; /* only for the blocking XREADGROUP */
    jq_rconn_t rwrite; /* acks, results, timers' commands */
    /* redis+cluster://: routes both connections' commands by slot
     * (rcluster.h); NULL otherwise. */
    jq_rcluster_t *cluster;
    char id[320]; /* <host>:<pid>, the group consumer name */
    char host[256];
    int64_t started_ms;
    uint64_t wall_at_ns; /* uv_hrtime() when wall_ms was read */
    int64_t wall_ms;     /* the wall clock then (run_wall_ms) */
    jq_job_limits_t limits;

    jq_queue_t queues[JQ_QSLOTS];
    int nqueues;

    jq_runlist_t running;   /* io and cpu runs with a handler started */
    jq_runlist_t waiting;   /* io runs waiting for an io slot */
    jq_runlist_t abandoned; /* cpu runs past their timeout, still on a thread */
    int busy_io, busy_cpu;
    jq_admit_t admit; /* slots by kind and queue (admit.h) */
    jq_runs_t runs;   /* run.c: the runs' home, for reuse */

    jq_fetch_t fetch;           /* fetch.c: reads and intake */
    jq_qhealth_stage_t qhealth; /* qhealth.c: broken queues probed */
    int draining;               /* no new fetches; exit when idle */
    int stopping;               /* handles are being closed */
    int exit_code;

    jq_finish_t finish; /* finish.c: outcomes, batched writes */
    jq_trim_t trim;     /* trim.c: acked ids kept for a later pass */

    uv_timer_t tick;        /* timeouts, renewals, recycling */
    uv_timer_t flags;       /* pause and cancel requests polled (cancel.h) */
    jq_cancel_t cancel;     /* cancel.c: requests checked, runs stopped */
    jq_progress_t progress; /* progress.c: reports written while running */
    uv_timer_t heartbeat;
    uv_timer_t shutdown_timer;
    uv_signal_t sigterm, sigint, sighup;
    uv_pipe_t ctl; /* fd 3: messages to the master, if any */
    int has_ctl;

    long long processed, failed, jobs_done;
    jq_chunks_t chunks;   /* chunks.c: chunked payloads loading */
    jq_reclaim_t reclaim; /* reclaim.c: renewal and reclaim */
    jq_types_t types;     /* types.c: types other workers handle */
    int ready_sent;
    int recycle_sent;
    int64_t tick_due_ms;
    jq_sched_t sched;       /* sched.c: promotion, dead sets trimmed */
    jq_ticks_t ticks;       /* ticks.c: schedules fired */
    jq_heartbeat_t beat;    /* heartbeat.c: the worker's hash */
    jq_limit_t limit;       /* limit.c: rate and concurrency limits */
    jq_settings_t settings; /* settings.c: per-queue settings polled */
    int64_t loop_lag_us;    /* worst tick lateness since the last heartbeat */
    int pending_closes;
};

/* worker.c */
/* What one worker holds of the entries it reads, bounded by --max-payload
 * whatever arrives (issue 21):
 *  - a bulk string longer than jq_worker_bulk_cap (the limit, or
 *    JQ_BULK_CAP_MIN when the limit is smaller, so that ids, names and
 *    other fields always read whole) is skipped unread on both
 *    connections: its entry is dead-lettered by its length alone;
 *  - a read never takes more entries than the worker has free slots
 *    (io-concurrency + 2 x threads: 66 by default), so it holds at most
 *    that many payloads at the limit, running or read;
 *  - the blocking read takes at most jq_worker_read_max entries
 *    (JQ_READ_BYTES / the cap, at least 1): 32 at the default 64 MiB, so
 *    that while Redis sends it oversized payloads to skip, a read behind
 *    the acks finds free slots for the jobs behind them (admit.h). */
#define JQ_BULK_CAP_MIN (1LL << 20)
#define JQ_READ_BYTES (2LL << 30)
long long jq_worker_bulk_cap(long long max_payload);
long long jq_worker_read_max(long long max_payload);

int jq_worker_main(const jq_options_t *opt);
void jq_worker_run_end(jq_worker_t *w, jq_run_t *r);
void jq_worker_maybe_exit(jq_worker_t *w);

/* Tells the master something (one line, e.g. "ready", "recycle max-jobs");
 * does nothing when the worker runs without a master. */
void jq_worker_tell(jq_worker_t *w, const char *msg);
/* Stops fetching and exits once every running job has ended; why is
 * logged. */
void jq_worker_drain(jq_worker_t *w, const char *why);

/* The callbacks the worker gives its stages (stage.h), w a jq_worker_t:
 * jq_attempt_start, jq_fetch_kick, jq_worker_maybe_exit. The stage tests
 * have their own (tests/unit/fake_stages.c). */
void jq_worker_start_cb(void *w, jq_run_t *r);
void jq_worker_kick_cb(void *w);
void jq_worker_exit_cb(void *w);
/* jq_qhealth_read_failed and jq_qhealth_key_error (w->qhealth), for fetch
 * (and key_error for reclaim and sched). */
void jq_worker_read_failed_cb(void *w, const char *err);
void jq_worker_key_error_cb(void *w, int q, const char *err);
/* For the heartbeat: w's counters (its loop lag starts afresh), and
 * jq_worker_tell(msg) then jq_worker_drain(why). */
void jq_worker_stats_cb(void *w, jq_heartbeat_stats_t *st);
/* For fetch and cancel: queue q has cancel requests (any) or not
 * (jq_cancel_learned); a checked run starts (jq_attempt_start); a
 * cancelled one stops (jq_attempt_cancel). */
void jq_worker_cancels_cb(void *w, int q, int any);
void jq_worker_vetted_cb(void *w, jq_run_t *r);
void jq_worker_stop_cb(void *w, jq_run_t *r);
void jq_worker_recycle_cb(void *w, const char *msg, const char *why);

/* What w lends its stages: a copy for each (jq_finish_init...). */
static inline jq_stage_env_t jq_worker_env(jq_worker_t *w) {
    jq_stage_env_t e = {
        .conn = &w->rwrite,
        .opt = w->opt,
        .queues = w->queues,
        .nqueues = &w->nqueues,
        .worker_id = w->id,
        .admit = &w->admit,
        .stopping = &w->stopping,
        .worker = w,
        .start = jq_worker_start_cb,
        .kick = jq_worker_kick_cb,
        .maybe_exit = jq_worker_exit_cb,
    };
    return e;
}

/* What w lends fetch besides its env. */
static inline jq_fetch_borrow_t jq_worker_fetch_borrow(jq_worker_t *w) {
    jq_fetch_borrow_t b = {
        .rfetch = &w->rfetch,
        .reg = &w->reg,
        .limits = &w->limits,
        .runs = &w->runs,
        .chunks = &w->chunks,
        .finish = &w->finish,
        .draining = &w->draining,
        .types = &w->types,
        .read_failed = jq_worker_read_failed_cb,
        .key_error = jq_worker_key_error_cb,
        .cancels = jq_worker_cancels_cb,
        .nqueues = &w->nqueues,
    };
    return b;
}

/* What w lends cancel besides its env. */
static inline jq_cancel_borrow_t jq_worker_cancel_borrow(jq_worker_t *w) {
    jq_cancel_borrow_t b = {
        .running = &w->running,
        .waiting = &w->waiting,
        .finish = &w->finish,
        .stop = jq_worker_stop_cb,
        .start = jq_worker_vetted_cb,
    };
    return b;
}

/* What w lends reclaim besides its env. */
static inline jq_reclaim_borrow_t jq_worker_reclaim_borrow(jq_worker_t *w) {
    jq_reclaim_borrow_t b = {
        .fetch = &w->fetch,
        .finish = &w->finish,
        .types = &w->types,
        .draining = &w->draining,
        .running = &w->running,
        .waiting = &w->waiting,
        .abandoned = &w->abandoned,
        .key_error = jq_worker_key_error_cb,
    };
    return b;
}

/* What w lends its heartbeat besides its env. */
static inline jq_heartbeat_borrow_t jq_worker_heartbeat_borrow(jq_worker_t *w) {
    jq_heartbeat_borrow_t b = {
        .host = w->host,
        .started_ms = &w->started_ms,
        .draining = &w->draining,
        .types = &w->types,
        .stats = jq_worker_stats_cb,
        .recycle = jq_worker_recycle_cb,
    };
    return b;
}

#endif
