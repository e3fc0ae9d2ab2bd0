#ifndef JQ_HEARTBEAT_H
#define JQ_HEARTBEAT_H

/* The worker's heartbeat (PROTOCOL §7): a hash of what the worker is doing
 * and costs, and its score in <p>:workers, refreshed every heartbeat and
 * left to expire after three missed ones, so that a dead worker drops out
 * of every dashboard on its own. Each heartbeat also publishes the
 * worker's job types (types.h) and recycles a worker over --max-rss-mb.
 *
 * Its state is a jq_heartbeat_t embedded in the worker (w->beat), with
 * what it borrows: the stages' env (stage.h) and a jq_heartbeat_borrow_t.
 * Commands go on the worker's write connection. */

#include <stddef.h>
#include <stdint.h>

#include "stage.h"
#include "types.h"

/* The worker's counters as one heartbeat reports them. */
typedef struct jq_heartbeat_stats {
    long long processed, failed; /* attempts ended, and how many failed */
    long long jobs_done;         /* jobs run: 0, an idle worker */
    int busy_io, busy_cpu;       /* slots in use */
    size_t cpu_backlog;          /* cpu runs waiting for a thread */
    int64_t loop_lag_us;         /* worst tick lateness since the last one */
} jq_heartbeat_stats_t;

/* What the heartbeat borrows besides the stages' env; all outlive it. */
typedef struct jq_heartbeat_borrow {
    const char *host;
    const int64_t *started_ms;
    const int *draining; /* reported; no recycling while draining */
    jq_types_t *types;   /* published each heartbeat */
    /* Called with env.worker: fills st with the worker's counters, and
     * starts its loop lag afresh for the next heartbeat. */
    void (*stats)(void *worker, jq_heartbeat_stats_t *st);
    /* Called with env.worker: over --max-rss-mb, the worker tells the
     * master msg and drains, saying why. */
    void (*recycle)(void *worker, const char *msg, const char *why);
} jq_heartbeat_borrow_t;

typedef struct jq_heartbeat {
    jq_stage_env_t env;      /* borrowed from the worker (stage.h) */
    jq_heartbeat_borrow_t b; /* borrowed too (above) */
    int rss_warned;          /* said once: over the limit while idle */
} jq_heartbeat_t;

/* Readies hb with what it borrows (copies of env and b). */
void jq_heartbeat_init(jq_heartbeat_t *hb, const jq_stage_env_t *env,
                       const jq_heartbeat_borrow_t *b);

/* Sends the heartbeat now, if the write connection is up. */
void jq_heartbeat_send(jq_heartbeat_t *hb);

#endif
