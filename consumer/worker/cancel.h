#ifndef JQ_CANCEL_H
#define JQ_CANCEL_H

/* Cancellation in the worker (docs/PROTOCOL.md §11). A request is a job id
 * in the queue's sorted set <p>:{q}:cancel, kept in Redis until the job
 * ends, so one sent while no worker runs (or while this one reconnects)
 * still takes effect. What it costs, and only while requests exist:
 *
 *  - knowing: the pause check (fetch.c) asks `EXISTS paused cancel` of
 *    each queue, every 100 ms, every 50 ms while this worker holds jobs
 *    of it (worker.c): the same one command per queue as before, so a
 *    queue without requests pays nothing (queue.h, `cancels`);
 *  - a ready job never starts: while its queue has requests, each run is
 *    held before its start and checked, all those of one loop turn in one
 *    ZMSCORE per queue (a round trip before they start); a cancelled one
 *    ends at once, `cancelled`, without an attempt. (A request that comes
 *    between a check that found none and the read of the job, one poll at
 *    most, is met by the next point instead: the job is stopped running);
 *  - a running job stops: at each check that says the queue has requests,
 *    one ZMSCORE of the ids of the jobs this worker runs from it; a
 *    cancelled one is stopped (attempt.c): its io handler's cancel() at
 *    once (exec: the guard kills its whole process group), a cpu task at
 *    its next jq_task_yield(). So a running io job stops within 50 ms of
 *    polling plus two round trips of the request;
 *  - a scheduled job (delayed, or waiting to retry) is removed by whoever
 *    asks (`jobq cancel`); a request that a plain ZADD left for one is
 *    carried out by the workers' sweep, the shared script (cancel_lua.h)
 *    run every second per queue while requests exist, which also drops
 *    the requests of jobs that ended and those older than
 *    JQ_CANCEL_MAX_AGE_MS whose job cannot be found.
 *
 * The outcome, `cancelled`, goes through finish like any other: its
 * result and notify list, its ack as a done job's, the `cancelled`
 * counter, and the request's ZREM (outcome.h). */

#include <stdint.h>
#include <uv.h>

#include "args.h"
#include "finish.h"
#include "run.h"
#include "stage.h"

#define JQ_CANCEL_SWEEP_MS 1000
#define JQ_CANCEL_MAX_AGE_MS (7LL * 24 * 3600 * 1000)

/* What the stage borrows besides the stages' env; all outlive it. */
typedef struct jq_cancel_borrow {
    jq_runlist_t *running, *waiting; /* the worker's runs (worker.h) */
    jq_finish_t *finish;             /* a run cancelled before its start */
    /* Stops r (running or waiting): its attempt ends cancelled
     * (attempt.c). Called with env.worker. */
    void (*stop)(void *worker, jq_run_t *r);
    /* Starts r, which was checked and is not cancelled. */
    void (*start)(void *worker, jq_run_t *r);
} jq_cancel_borrow_t;

typedef struct jq_cancel {
    jq_stage_env_t env;
    jq_cancel_borrow_t b;
    jq_runlist_t vetting; /* runs held before their start, to check */
    int out;              /* checks of held runs in flight: a drain
                             waits for them */
    uv_check_t check;     /* sends the checks, once per loop turn */
    int probing[JQ_QUEUES_MAX];
    int64_t last_sweep_ms[JQ_QUEUES_MAX];
    int64_t last_error_ms; /* errors are logged once a minute */
    jq_args_t args;
} jq_cancel_t;

/* Readies c (copies of env and b); jq_cancel_start makes its check
 * handle on loop (0 or a libuv error); worker.c closes c->check with its
 * other handles. jq_cancel_destroy frees the builder after the loop. */
void jq_cancel_init(jq_cancel_t *c, const jq_stage_env_t *env, const jq_cancel_borrow_t *b);
int jq_cancel_start(jq_cancel_t *c, uv_loop_t *loop);
void jq_cancel_destroy(jq_cancel_t *c);

/* Before r starts: 0 when its queue has no requests (start it), 1 when
 * the stage holds it to check first (then b.start, or finish). */
int jq_cancel_vet(jq_cancel_t *c, jq_run_t *r);

/* The pause check learned that queue q has requests (any) or not: with
 * requests, checks the jobs this worker runs from q and sweeps when due. */
void jq_cancel_learned(jq_cancel_t *c, int q, int any, int64_t now);

/* Runs held or being checked: a drain waits for them. */
int jq_cancel_busy(const jq_cancel_t *c);

/* A forced stop: frees the held runs (their entries stay pending). */
void jq_cancel_drop(jq_cancel_t *c);

#endif
