#ifndef JQ_WORKER_H
#define JQ_WORKER_H

/* One worker process: a libuv loop that fetches jobs from Redis in batches
 * sized to its free capacity, runs io jobs on the loop and cpu jobs on its
 * own pool, and writes their outcomes back in pipelined batches.
 *
 * The modules of a worker share these structs:
 *   worker.c    life cycle, timers, signals, draining
 *   admit.c     admission: the COUNT of each queue's next read (its own state)
 *   fetch.c     XREADGROUP, entry -> run, payload decoding (its own state)
 *   reclaim.c   renewal and reclaim of pending entries (its own state)
 *   finish.c    outcome of each attempt -> one pipelined batch of writes
 *               (its own state)
 *   heartbeat.c the worker's hash in <p>:workers / <p>:worker:<id>  */

#include <stdint.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <uv.h>

#include "admit.h"
#include "args.h"
#include "fetch.h"
#include "finish.h"
#include "handlers.h"
#include "job.h"
#include "options.h"
#include "pool.h"
#include "qhealth.h"
#include "rconn.h"
#include "reclaim.h"
#include "reply.h"
#include "trim.h"

typedef enum {
    JQ_RUN_WAITING,  /* io job waiting for an io slot */
    JQ_RUN_RUNNING,  /* handler started, or queued/running in the pool */
    JQ_RUN_ABANDONED,/* cpu job past its timeout: outcome written, thread busy */
} jq_run_state_t;

typedef enum {
    JQ_OUT_DONE,     /* handler succeeded */
    JQ_OUT_FAILED,   /* an attempt failed: retry or dead, by attempts left */
    JQ_OUT_DEAD,     /* dead at once: malformed job, unknown type, worker lost */
} jq_outcome_t;


/* One attempt of one job inside the worker: from the entry read until its
 * outcome is written. Owns the entry's fields (copied out of the reply),
 * the decoded payload and the task the handler sees. */
struct jq_run {
    jq_worker_t *w;
    int q;                        /* index into the worker's queues */
    jq_kind_t kind;               /* the slot it holds (admit.h) */
    int held;                     /* holds a slot: given back by jq_run_free */
    int sent;                     /* its ack is sent, not yet answered */
    int finished;                 /* its attempt ended (admit: read-ahead) */
    jq_job_t job;
    jq_reply_fields_t *fields;    /* the entry's fields, in this run's
                                     allocation (fetch.c); their big
                                     strings owned */
    const jq_handler_t *h;
    msgpack_zone *zone;           /* owns the decoded payload object:
                                     &zone_mem, or chunks.c's own zone */
    msgpack_zone zone_mem;        /* an inline payload's zone (fetch.c):
                                     in the run, one malloc less per job */
    const void *zone_first;       /* zone_mem's first chunk while zone_mem
                                     is initialised; it stays so while the
                                     run waits for reuse (fetch.c) */
    size_t cap;                   /* bytes behind the run for its fields
                                     when it may be reused, else 0 */
    msgpack_object payload;
    msgpack_sbuffer jbuf;         /* enc json: the payload turned msgpack */
    int keep;                     /* abandoned cpu run: freed by pool done */
    jq_task_t task;
    jq_pool_item_t item;
    jq_run_state_t state;
    int64_t started_ms;
    uint64_t started_ns;          /* uv_hrtime() at start, for run time */
    jq_outcome_t outcome;
    char error[JQ_ERR_LEN];
    int64_t finished_ms;
    int64_t run_us;
    jq_run_t *prev, *next;        /* in the worker's running or waiting list */
    jq_run_t *bnext;              /* in a finish batch */
    int unsure;                   /* its EXEC's reply was lost: written or
                                     not, finish.c checks before writing */
};

typedef struct jq_queue {
    const char *name;             /* borrowed from options */
    char stream[JQ_KEY_MAX];
    int paused;                   /* 1 paused, 0 not, -1 not known yet
                                     (not read, reclaimed or probed) */
    jq_qhealth_t health;          /* qhealth.c: broken queues out of reads */
} jq_queue_t;

typedef struct jq_runlist {
    jq_run_t *head, *tail;
    size_t n;
} jq_runlist_t;

struct jq_worker {
    uv_loop_t loop;
    const jq_options_t *opt;
    jq_registry_t reg;
    jq_pool_t pool;
    jq_rconn_t rfetch;            /* only for the blocking XREADGROUP */
    jq_rconn_t rwrite;            /* acks, results, timers' commands */
    char id[320];                 /* <host>:<pid>, the group consumer name */
    char host[256];
    int64_t started_ms;
    uint64_t wall_at_ns;          /* uv_hrtime() when wall_ms was read */
    int64_t wall_ms;              /* the wall clock then (run_wall_ms) */
    jq_job_limits_t limits;

    jq_queue_t queues[JQ_QUEUES_MAX];
    int nqueues;

    jq_runlist_t running;         /* io and cpu runs with a handler started */
    jq_runlist_t waiting;         /* io runs waiting for an io slot */
    jq_runlist_t abandoned;       /* cpu runs past their timeout, still on a thread */
    int busy_io, busy_cpu;
    jq_admit_t admit;             /* slots by kind and queue (admit.h) */

    jq_fetch_t fetch;             /* fetch.c: reads and intake */
    int draining;                 /* no new fetches; exit when idle */
    int stopping;                 /* handles are being closed */
    int exit_code;

    jq_finish_t finish;           /* finish.c: outcomes, batched writes */
    jq_trim_t trim;               /* trim.c: acked ids kept for a later pass */

    uv_timer_t tick;              /* timeouts, pause, renewals, recycling */
    uv_timer_t heartbeat;
    uv_timer_t shutdown_timer;
    uv_signal_t sigterm, sigint, sighup;
    uv_pipe_t ctl;                /* fd 3: messages to the master, if any */
    int has_ctl;

    long long processed, failed, jobs_done;
    int loading;                  /* runs whose chunks are being read */
    jq_reclaim_t reclaim;         /* reclaim.c: renewal and reclaim */
    int flushing;                 /* replies on rwrite a drain waits for:
                                     finish's EXECs, trim passes, reads
                                     behind the acks */
    int ready_sent;
    int recycle_sent;
    int64_t tick_due_ms;
    int64_t last_promote_ms;
    int64_t last_trim_ms;
    int64_t loop_lag_us;          /* worst tick lateness since the last heartbeat */
    int pending_closes;
};

/* worker.c */
int jq_worker_main(const jq_options_t *opt);
void jq_worker_run_start(jq_worker_t *w, jq_run_t *r);
void jq_worker_run_end(jq_worker_t *w, jq_run_t *r);
void jq_worker_maybe_exit(jq_worker_t *w);
void jq_runlist_push(jq_runlist_t *l, jq_run_t *r);
void jq_runlist_remove(jq_runlist_t *l, jq_run_t *r);
void jq_run_free(jq_run_t *r);
/* Frees r's decoded payload object, wherever its zone lives; an embedded
 * zone that kept to its first chunk is only cleared, for reuse. */
void jq_run_drop_zone(jq_run_t *r);

/* chunks.c: loads a chunked payload (PROTOCOL §1) in bounded batches and
 * streams it into the decoder; then starts the run with
 * jq_worker_run_start(), or dead-letters it with the reason. The run is
 * owned by the loader until then. Returns 0. */
int jq_chunks_load(jq_worker_t *w, jq_run_t *r);

/* Tells the master something (one line, e.g. "ready", "recycle max-jobs");
 * does nothing when the worker runs without a master. */
void jq_worker_tell(jq_worker_t *w, const char *msg);
/* Stops fetching and exits once every running job has ended; why is
 * logged. */
void jq_worker_drain(jq_worker_t *w, const char *why);

/* heartbeat.c */
void jq_heartbeat_send(jq_worker_t *w);

#endif
