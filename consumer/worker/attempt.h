#ifndef JQ_ATTEMPT_H
#define JQ_ATTEMPT_H

/* An attempt, the worker's middle stage: a run taken in (fetch.c, chunks.c)
 * is started, an io job on the loop (or made to wait for an io slot), a cpu
 * job on the pool; its end is recorded (outcome, times, counters) and the
 * run handed to finish (finish.h). The tick ends the attempts past their
 * timeout. */

#include <stdint.h>

#include "run.h"

typedef struct jq_worker jq_worker_t;

/* Starts r, whose payload is decoded: the worker holds it (its running or
 * waiting list) until its attempt ends. */
void jq_attempt_start(jq_worker_t *w, jq_run_t *r);

/* Cancels r, running or waiting for an io slot (cancel.h): a waiting
 * one ends at once, a running io one is stopped with its handler's
 * cancel(), a cpu one ends when its run() returns (it sees the cancel at
 * its next jq_task_yield). Its outcome is JQ_OUT_CANCELLED. */
void jq_attempt_cancel(jq_worker_t *w, jq_run_t *r);

/* From the tick: fails the attempts running past their job's timeout (an
 * io handler is cancelled; a cpu thread cannot be, so its run is
 * abandoned to it), and recycles the worker when a cpu thread is stuck
 * long past its timeout. */
void jq_attempt_timeouts(jq_worker_t *w, int64_t now);

#endif
