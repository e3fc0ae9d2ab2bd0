#ifndef JQ_RUN_H
#define JQ_RUN_H

/* A run: one attempt of one job inside the worker, from the entry read
 * until its outcome is written. This module owns its life cycle: the
 * allocation (with the entry's fields behind it), the payload zone, the
 * reuse of freed runs, and the end that gives back what it held.
 *
 * Who holds a run when: fetch.c makes it (jq_run_new) and hands it to the
 * worker to start (or chunks.c to load, or finish.c to dead-letter);
 * worker.c runs it; finish.c takes its outcome and frees it
 * (jq_run_free) once Redis took that outcome. */

#include <stdint.h>
#include <msgpack.h>

#include "admit.h"
#include "handlers.h"
#include "job.h"
#include "pool.h"
#include "reply.h"

typedef struct jq_worker jq_worker_t;
typedef struct jq_run jq_run_t;

typedef enum {
    JQ_RUN_WAITING,   /* io job waiting for an io slot */
    JQ_RUN_RUNNING,   /* handler started, or queued/running in the pool */
    JQ_RUN_ABANDONED, /* cpu job past its timeout: outcome written, thread busy */
} jq_run_state_t;

typedef enum {
    JQ_OUT_DONE,      /* handler succeeded */
    JQ_OUT_FAILED,    /* an attempt failed: retry or dead, by attempts left */
    JQ_OUT_DEAD,      /* dead at once: malformed job, unknown type, worker lost */
    JQ_OUT_CANCELLED, /* cancelled (cancel.h): before its start, or stopped */
} jq_outcome_t;

/* The runs' home: the admission their slots are given back to, and the
 * freed runs kept for reuse. Embedded in the worker; every run points at
 * it (r->home) from jq_run_new on. */
typedef struct jq_runs {
    jq_admit_t *admit; /* borrowed: outlives every run */
    jq_run_t *spare;   /* freed runs kept for reuse (owned) */
    int nspare;
} jq_runs_t;

/* Owns the entry's fields (copied out of the reply), the decoded payload
 * and the task the handler sees. */
struct jq_run {
    jq_runs_t *home; /* where it goes back at jq_run_free */
    jq_worker_t *w;  /* the worker running it (worker.c) */
    int q;           /* index into the worker's queues */
    jq_kind_t kind;  /* the slot it holds (admit.h) */
    int held;        /* holds a slot: given back by jq_run_free */
    int sent;        /* its ack is sent, not yet answered */
    int finished;    /* its attempt ended (admit: read-ahead) */
    jq_job_t job;
    jq_reply_fields_t *fields; /* the entry's fields, in this run's
                                     allocation (fetch.c); their big
                                     strings owned */
    const jq_handler_t *h;
    msgpack_zone *zone;     /* owns the decoded payload object:
                                     &zone_mem, or chunks.c's own zone */
    msgpack_zone zone_mem;  /* an inline payload's zone (jq_run_zone):
                                     in the run, one malloc less per job */
    const void *zone_first; /* zone_mem's first chunk while zone_mem
                                     is initialised; it stays so while the
                                     run waits for reuse */
    size_t cap;             /* bytes behind the run for its fields
                                     when it may be reused, else 0 */
    msgpack_object payload;
    msgpack_sbuffer jbuf; /* enc json: the payload turned msgpack */
    const char *praw;     /* the msgpack bytes payload was decoded from,
                             valid while it is; NULL when they are not
                             kept (a chunked payload with no str or bin:
                             its unpacker buffer goes with the loader) */
    size_t praw_len;
    int res_is_praw; /* a done task's result is its payload
                        (jq_task_result_payload): praw, borrowed, and the
                        payload is then kept to jq_run_free; 0: the result
                        is task.result (jq_run_result) */
    int keep;        /* abandoned cpu run: freed by pool done */
    jq_task_t task;
    jq_pool_item_t item;
    jq_run_state_t state;
    int64_t started_ms;
    uint64_t started_ns; /* uv_hrtime() at start, for run time */
    jq_outcome_t outcome;
    struct jq_run_progress *prog; /* its last progress report, from the
                                     first (progress.h); NULL before */
    int cancel;                   /* its job is cancelled (cancel.h): the attempt
                                     ends JQ_OUT_CANCELLED, whatever the
                                     handler says */
    int permanent;                /* failed, and no retry (the handler's
                                     jq_task_fail_permanent) */
    long long retry_after_ms;     /* failed with jq_task_retry_after: retried
                                 then, its attempt not used */
    char error[JQ_ERR_LEN];
    int64_t finished_ms;
    int64_t run_us;
    jq_run_t *prev, *next; /* in the worker's running or waiting list */
    jq_run_t *bnext;       /* in a finish batch */
    int unsure;            /* its EXEC's reply was lost: written or
                                     not, finish.c checks before writing */
};

/* A done run's result bytes: the handler's, or the payload's own. */
static inline const char *jq_run_result(const jq_run_t *r, size_t *len) {
    if (r->res_is_praw) {
        *len = r->praw_len;
        return r->praw;
    }
    *len = r->task.result.size;
    return r->task.result.data;
}

/* A list of runs by prev/next (the worker's running, waiting, abandoned). */
typedef struct jq_runlist {
    jq_run_t *head, *tail;
    size_t n;
} jq_runlist_t;

void jq_runlist_push(jq_runlist_t *l, jq_run_t *r);
void jq_runlist_remove(jq_runlist_t *l, jq_run_t *r);

/* admit: borrowed, outlives every run. */
void jq_runs_init(jq_runs_t *rs, jq_admit_t *admit);
/* Frees the runs kept for reuse, after every run was freed. */
void jq_runs_destroy(jq_runs_t *rs);

/* A zeroed run of home rs with room for fsize bytes of fields behind it
 * (at r + 1), or NULL when out of memory. A reused one keeps its payload
 * zone, cleared, with its first chunk. */
jq_run_t *jq_run_new(jq_runs_t *rs, size_t fsize);
/* The zone for r's inline payload (r->zone from then on), made at the
 * run's first use and kept through reuse; NULL when out of memory. */
msgpack_zone *jq_run_zone(jq_run_t *r);
/* Frees r's decoded payload object, wherever its zone lives; an embedded
 * zone that kept to its first chunk is only cleared, for reuse. */
void jq_run_drop_zone(jq_run_t *r);
/* Marks r dead at once, with reason why (no attempt made), for finish to
 * dead-letter (jq_finish_add). */
void jq_run_dead(jq_run_t *r, const char *why);
/* The handler is done with the decoded payload: frees it, and for a done
 * job the entry's fields (finish.c, before the result is copied out). Not
 * for an abandoned cpu run (r->keep), whose thread may still read it. */
void jq_run_drop_payload(jq_run_t *r);
/* Ends r: gives back the slots it held (admit.h), frees its payload, its
 * result and its fields, and keeps the run for reuse (up to a batch of
 * them) or frees it. jq_run_free(NULL) does nothing. */
void jq_run_free(jq_run_t *r);

#endif
