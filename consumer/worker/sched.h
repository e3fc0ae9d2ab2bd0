#ifndef JQ_SCHED_H
#define JQ_SCHED_H

/* Time-driven duties of a worker, run from its tick: promoting due jobs
 * from <p>:{q}:scheduled into the stream (PROTOCOL §2) and trimming the dead
 * set (§4). Both are Lua scripts, so each move is atomic: with many
 * consumers promoting at once a job is promoted exactly once, and a consumer
 * that dies between two steps leaves nothing half done.
 *
 * Its state is a jq_sched_t embedded in the worker (w->sched), with what it
 * borrows: the stages' env (stage.h), the worker's draining flag and the
 * queue health callback fetch and reclaim have. Commands go on the
 * worker's write connection. */

#include <stdint.h>

#include "stage.h"

typedef struct jq_sched jq_sched_t;

/* A queue's index with its stage, as a reply's callback argument. */
typedef struct jq_sched_qref {
    jq_sched_t *s;
    int q;
} jq_sched_qref_t;

struct jq_sched {
    jq_stage_env_t env;  /* borrowed from the worker (stage.h) */
    const int *draining; /* borrowed: the worker drains, no duty */
    /* Queue health (qhealth.h), called with env.worker: queue q's key
     * answered err. */
    void (*key_error)(void *worker, int q, const char *err);
    int64_t last_promote_ms;
    int64_t last_trim_ms;
    jq_sched_qref_t qref[JQ_QSLOTS];
};

/* Readies s with what it borrows (a copy of env; draining outlives s). */
void jq_sched_init(jq_sched_t *s, const jq_stage_env_t *env, const int *draining,
                   void (*key_error)(void *worker, int q, const char *err));

/* Loads the scripts (SCRIPT LOAD) on a fresh connection; their SHA1s for
 * EVALSHA are Redis's answers. Until both have come, the tick sends none
 * (and asks again if a load failed). */
void jq_sched_on_connect(jq_sched_t *s);

/* Promotes due jobs of every queue, and now and then trims dead sets. */
void jq_sched_tick(jq_sched_t *s, int64_t now);

/* The scripts' text, for tests and docs. */
extern const char jq_sched_promote_lua[];
extern const char jq_sched_trim_lua[];

#endif
