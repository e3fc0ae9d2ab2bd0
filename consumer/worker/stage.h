#ifndef JQ_STAGE_H
#define JQ_STAGE_H

/* What a stage of the worker's pipeline (fetch, chunks, finish, trim) or
 * one beside it (reclaim, qhealth, sched, heartbeat) borrows from the
 * worker: a copy of this struct, kept in the stage's own
 * state, made once at start by the worker (jq_worker_env, worker.h). The
 * pointers live as long as the worker; the callbacks are the worker's
 * (the stage tests have their own, tests/unit/fake_stages.c). */

#include "admit.h"
#include "options.h"
#include "queue.h"
#include "rconn.h"
#include "run.h"

typedef struct jq_stage_env {
    jq_rconn_t *conn; /* the write connection */
    const jq_options_t *opt;
    jq_queue_t *queues;    /* the worker's queues, by index q */
    const int *nqueues;    /* how many */
    const char *worker_id; /* <host>:<pid>, the group consumer name */
    jq_admit_t *admit;     /* slots by kind and queue */
    const int *stopping;   /* the worker closes its handles: a reply
                                   * that comes now is dropped */
    void *worker;          /* the callbacks' argument */
    /* Starts r, its payload decoded (attempt.h). */
    void (*start)(void *worker, jq_run_t *r);
    /* Slots may be free: fetch reads again if it may (fetch.h). */
    void (*kick)(void *worker);
    /* A reply a drain waits for came back: exits if nothing else is out. */
    void (*maybe_exit)(void *worker);
} jq_stage_env_t;

#endif
