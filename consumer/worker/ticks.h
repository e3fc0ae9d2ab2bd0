#ifndef JQ_TICKS_H
#define JQ_TICKS_H

/* Firing schedules (PROTOCOL §13): every worker looks, per queue it
 * serves, for schedules whose next tick is due, and fires each with one
 * Lua script that checks the tick is still the stored one, enqueues the
 * job and stores the next tick, atomically. Two workers that fire the same
 * tick race on that check: one enqueues, the other finds the next tick
 * stored and does nothing. So each tick gives exactly one job whatever
 * the number of consumers, with no leader. The next tick is computed here
 * (common/cron.h), from Redis's clock, after max(now, the tick): after an
 * outage the missed ticks give one job, not one each.
 *
 * Cost: a queue without schedules is looked at every 2 s (one EVALSHA of
 * a ZRANGEBYSCORE and a ZCARD on an absent key), one with schedules every
 * 250 ms; nothing per job. Commands go on the worker's write connection. */

#include <stdint.h>

#include "stage.h"

typedef struct jq_ticks jq_ticks_t;

typedef struct jq_ticks_qref {
    jq_ticks_t *t;
    int q;
} jq_ticks_qref_t;

struct jq_ticks {
    jq_stage_env_t env;  /* borrowed from the worker (stage.h) */
    const int *draining; /* borrowed: the worker drains, nothing fires */
    int64_t next_poll_ms[JQ_QUEUES_MAX];
    int polling[JQ_QUEUES_MAX]; /* a poll is out: no second one */
    int has[JQ_QUEUES_MAX];     /* the last poll saw schedules */
    long long fired;            /* jobs this worker enqueued */
    int64_t last_warn_ms;       /* schedule errors are logged once a minute */
    jq_ticks_qref_t qref[JQ_QUEUES_MAX];
};

/* Readies t with what it borrows (a copy of env; draining outlives t). */
void jq_ticks_init(jq_ticks_t *t, const jq_stage_env_t *env, const int *draining);

/* Loads the scripts on a fresh connection (SCRIPT LOAD). */
void jq_ticks_on_connect(jq_ticks_t *t);

/* Polls the queues whose turn it is; fires what is due. */
void jq_ticks_tick(jq_ticks_t *t, int64_t now);

/* The scripts' text, for tests and docs. */
extern const char jq_ticks_poll_lua[];
extern const char jq_ticks_fire_lua[];

#endif
