#ifndef JQ_RECLAIM_H
#define JQ_RECLAIM_H

/* Crash safety (PROTOCOL §6), the worker's half:
 *   - renewal: every visibility/3 the worker re-stamps the entries it holds
 *     (XCLAIM ... JUSTID to itself), so a long job is never taken from it;
 *   - reclaim: with free slots, it takes entries idle past the visibility
 *     timeout (a vanished consumer's, or a dead worker's that the master
 *     handed back) with XPENDING IDLE + XCLAIM, and runs them. An entry
 *     delivered more times than its job's attempts allow is dead-lettered
 *     with "worker lost" instead of run: a poison job cannot crash-loop the
 *     cluster.
 *
 * Its state is a jq_reclaim_t embedded in the worker (w->reclaim), with
 * what it borrows: the stages' env (stage.h) and a jq_reclaim_borrow_t.
 * The worker calls it from its tick, its reconnects and the master's
 * "reclaim" message, and asks jq_reclaim_busy before it exits. Commands
 * go on the worker's write connection. */

#include <stdint.h>

#include "args.h"
#include "fetch.h"
#include "finish.h"
#include "run.h"
#include "stage.h"
#include "types.h"

/* What reclaim borrows besides the stages' env (stage.h); all outlive it. */
typedef struct jq_reclaim_borrow {
    jq_fetch_t *fetch;   /* claimed entries are taken in there */
    jq_finish_t *finish; /* outcomes not written yet are renewed
                                     too; while it holds, no reclaim */
    jq_types_t *types;   /* entries handed back for their type */
    const int *draining; /* the worker drains: no reclaim */
    /* The worker's runs: running and waiting ones are renewed; with the
     * abandoned ones they are not claimed back to run again. */
    const jq_runlist_t *running, *waiting, *abandoned;
    /* Queue health (qhealth.h), called with env.worker: a command on queue
     * q's keys answered err. */
    void (*key_error)(void *worker, int q, const char *err);
} jq_reclaim_borrow_t;

typedef struct jq_reclaim {
    jq_stage_env_t env;    /* borrowed from the worker (stage.h) */
    jq_reclaim_borrow_t b; /* borrowed too (above) */
    int inflight;          /* XPENDING/XCLAIM round trips in flight */
    int64_t last_renew_ms;
    int64_t last_reclaim_ms; /* in the future: reclaiming is paused */
    int64_t own_due_ms;      /* jq_reclaim_own from the tick then; 0: none */
    jq_args_t args;          /* each XCLAIM and renewal EVAL, reused */
} jq_reclaim_t;

/* Readies rc with what it borrows (copies of env and b). */
void jq_reclaim_init(jq_reclaim_t *rc, const jq_stage_env_t *env, const jq_reclaim_borrow_t *b);
/* Frees the builder's memory, after the loop ended. */
void jq_reclaim_destroy(jq_reclaim_t *rc);

/* From the worker's tick: renews what it holds every visibility/3, and
 * reclaims every 200 ms (not while draining, held, or a reclaim is still
 * in flight). */
void jq_reclaim_tick(jq_reclaim_t *rc, int64_t now);

/* The master handed a dead worker's entries back: reclaim now, unless
 * the pause after a reconnect holds reclaiming back. */
void jq_reclaim_now(jq_reclaim_t *rc, int64_t now);

/* Back after an outage: renews at once, and reclaims nothing for
 * pause_ms, until the other workers renewed theirs. */
void jq_reclaim_reconnected(jq_reclaim_t *rc, int64_t now, int64_t pause_ms);

/* After a reconnect: takes back our own pending entries that a read whose
 * reply was lost delivered to us, so they run now rather than after the
 * visibility timeout. Call after renewing and flushing. */
void jq_reclaim_own(jq_reclaim_t *rc);

/* The fetch connection came back while the write connection stayed: a
 * read whose reply was lost may have delivered entries to us. Runs
 * jq_reclaim_own from the tick once they are idle past its threshold. */
void jq_reclaim_own_soon(jq_reclaim_t *rc, int64_t now);

/* Whether a reclaim round trip is in flight: a drain waits for it, since
 * what it claims is ours to run. */
int jq_reclaim_busy(const jq_reclaim_t *rc);

#endif
