#ifndef JQ_FINISH_H
#define JQ_FINISH_H

/* Finishing, the worker's last stage: the outcome of every attempt that
 * ended (and of every job dead-lettered on arrival) is queued in a batch,
 * and once per loop turn the batch is written as one MULTI/EXEC per queue
 * (finish.c's header says what goes into it, and why).
 *
 * Its state is a jq_finish_t embedded in the worker (w->finish), with what
 * it borrows (a jq_stage_env_t: the write connection, options, queues,
 * admission, the worker's callbacks) and the trim it ends each MULTI
 * with. Ownership:
 * a run handed over by jq_finish_add belongs to this stage from then on: it
 * sits in the batch, or in an EXEC (a flight) whose reply has not come
 * back, until that reply says it was written; then it is freed
 * (jq_run_free), or, an abandoned cpu run whose thread still uses it, left
 * to the pool's done callback (r->keep == 2). An EXEC refused or lost puts
 * its runs back into the batch. jq_finish_destroy frees whatever is left.
 * Commands go on the worker's write connection; flying counts this stage's
 * EXECs still out, so that a drain waits for them. worker.c closes
 * flush_check with its other handles. */

#include <stdint.h>
#include <hiredis/async.h>
#include <uv.h>

#include "args.h"
#include "stage.h"
#include "trim.h"

struct jq_flush;

typedef struct jq_finish {
    jq_stage_env_t env; /* borrowed from the worker (stage.h) */
    jq_trim_t *trim;    /* borrowed: the batch's trim (trim.h) */

    /* The command builders, reused so that a warm batch allocates nothing
     * for its argv. */
    jq_args_t args; /* each command of the batch's MULTI */
    jq_args_t ack;  /* the batch's XACK, built alongside */
    jq_args_t keys; /* the outcome script's KEYS */
    jq_args_t out;  /* its ARGV: one group per outcome */
    int nout;       /* outcomes in out */
    int queued;     /* commands sent since the open MULTI */
    int bad;        /* a command of the open MULTI could not
                                     be built: discard it */

    /* Outcomes waiting for the next flush, chained by r->bnext. */
    jq_run_t *batch_head, *batch_tail;
    int unacked;              /* runs in the batch or in an unanswered
                                     EXEC: still pending in the stream */
    struct jq_flush *flights; /* EXECs (and lost-reply checks) sent,
                                     not answered, with their runs */
    int flying;               /* how many: a drain waits for them */
    uv_check_t flush_check;   /* flushes the batch once per loop turn */

    /* Redis refused our writes (EXECABORT: OOM, READONLY, MISCONF...):
     * the outcomes are held in the batch and written again after hold_ms;
     * meanwhile nothing new is fetched or reclaimed. */
    int held;
    int64_t held_since_ms, hold_next_ms;
    int hold_ms;
    int asking;       /* a writability probe is out (finish.c) */
    int64_t asked_ms; /* when the last one went */
} jq_finish_t;

/* Readies fin with what it borrows (a copy of env; trim outlives fin). */
void jq_finish_init(jq_finish_t *fin, const jq_stage_env_t *env, jq_trim_t *trim);
/* Starts the check that flushes the batch once per loop turn on loop.
 * Returns 0 or a libuv error. */
int jq_finish_start(jq_finish_t *fin, uv_loop_t *loop);
/* Frees the stage's memory, after the loop ended, and the runs whose
 * outcomes Redis never took (logged; their entries stay pending). */
void jq_finish_destroy(jq_finish_t *f);

/* Takes r's outcome (r->outcome, r->error, its result in r->task): r is
 * this stage's from now on (see above). Written at the next flush. */
void jq_finish_add(jq_finish_t *fin, jq_run_t *r);
/* Sends the batch now, if the write connection is up and Redis is not
 * being waited out after a refusal; then lets fetch read behind it. */
void jq_finish_flush(jq_finish_t *fin);

/* Whether entry id of queue q is an outcome this stage still has to write
 * or is writing (in the batch or in an EXEC not yet answered). */
int jq_finish_holds(const jq_finish_t *f, int q, const char *id);
/* Puts into ids[0..max) the entry ids of queue q whose outcomes are still
 * to be written or being written (borrowed: valid until the next flush
 * answer). Returns how many. */
int jq_finish_ids(const jq_finish_t *f, int q, const char **ids, int max);

/* For outcome.c, inside the MULTI the batch writer opened: the command
 * builder, emptied, with the command name in it; then sending what was
 * built (0, or -1 when not sent: fn never runs); and an EXPIRE. A command
 * that could not be built discards the whole MULTI. */
jq_args_t *jq_finish_cmd(jq_finish_t *fin, const char *name);
int jq_finish_send(jq_finish_t *fin, redisCallbackFn *fn, void *priv);
/* jq_finish_send with the builder's arguments from n_copy on written
 * from their own memory (jq_rconn_args_ref): a result's chunks, which
 * live as long as their run, past its EXEC's reply. No callback. */
int jq_finish_send_ref(jq_finish_t *fin, int n_copy);
void jq_finish_expire(jq_finish_t *fin, const char *key, const char *ttl);

/* finish_hold.c, for finish.c: a refused EXEC holds the batch (fetching
 * and reclaiming stop, the tries back off), Redis taking writes again ends
 * it; jq_finish_hold_wait says whether a flush must wait now (it asks
 * Redis meanwhile whether it takes writes again). */
void jq_finish_hold(jq_finish_t *fin, const char *why, int nruns);
void jq_finish_unhold(jq_finish_t *fin);
int jq_finish_hold_wait(jq_finish_t *fin);

/* Whether Redis refuses our writes: no new job is fetched or reclaimed,
 * no trim sent, until it takes the held outcomes. */
static inline int jq_finish_held(const jq_finish_t *f) { return f->held; }
/* EXECs sent whose answer has not come: a drain waits for them. */
static inline int jq_finish_flying(const jq_finish_t *f) { return f->flying; }
/* Whether outcomes wait in the batch, not yet sent. */
static inline int jq_finish_pending(const jq_finish_t *f) { return f->batch_head != NULL; }

#endif
