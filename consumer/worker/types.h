#ifndef JQ_TYPES_H
#define JQ_TYPES_H

/* Job types this worker does not handle (issue 27; docs/PROTOCOL.md §7).
 * Consumers with different handler sets may share a queue: each worker
 * publishes the types it handles, per queue, in the sorted set
 * <p>:{q}:types (member: the type, score: the last heartbeat, ms, of a
 * worker that handles it), and reads it back each heartbeat. An entry of
 * a type this worker does not handle is handed back while another live
 * worker handles it, or while it is younger than the grace: it stays
 * pending, claimed to the group consumer `type=<type>` (no worker's
 * name) stamped idle far past the visibility timeout, its delivery
 * uncounted. A reclaim takes such an entry only if its worker handles
 * the type, or once nobody does and the grace is over (to dead-letter
 * it): so no worker passes it to itself or a sibling in a loop.
 *
 * The grace is three heartbeats, as for a worker to count as gone: a
 * worker that handles the type and restarts within it keeps its jobs. */

#include <stdint.h>

#include "args.h"
#include "handlers.h"
#include "job.h"
#include "stage.h"

/* The group consumer that holds entries handed back for type T:
 * "type=T" ('=' is in no host name and no type). */
#define JQ_TYPES_CONSUMER "type="

typedef struct jq_types_known {
    char name[JQ_NAME_MAX_BUF];
    long long seen_ms; /* the type's score: its last heartbeat */
} jq_types_known_t;

typedef struct jq_types jq_types_t;

typedef struct jq_types_qref {
    jq_types_t *t;
    int q;
} jq_types_qref_t;

struct jq_types {
    jq_stage_env_t env;                 /* borrowed from the worker (stage.h) */
    const jq_registry_t *reg;           /* what this worker handles */
    char *csv;                          /* its type names, comma-separated (owned) */
    jq_types_known_t *known[JQ_QSLOTS]; /* each queue's set, as last read */
    int nknown[JQ_QSLOTS];
    int loaded[JQ_QSLOTS];       /* read at least once */
    int64_t asked_ms[JQ_QSLOTS]; /* when the read in flight was sent */
    int64_t read_ms[JQ_QSLOTS];  /* when the set read last was sent */
    jq_types_qref_t qref[JQ_QSLOTS];
    jq_args_t args;
};

/* reg is borrowed and holds every handler already. Returns 0 or -1 (out
 * of memory). */
int jq_types_init(jq_types_t *t, const jq_stage_env_t *env, const jq_registry_t *reg);
void jq_types_destroy(jq_types_t *t);

/* This worker's types, comma-separated (the worker hash's `types`). */
const char *jq_types_csv(const jq_types_t *t);

/* From the heartbeat: ZADD GT of this worker's types into each queue's
 * set, the stale ones (three heartbeats) removed, and the set read back. */
void jq_types_publish(jq_types_t *t, int64_t now);

/* An entry of queue q (delivered `deliveries` times, counting this one)
 * whose type this worker does not handle. Returns 1 when it was handed
 * back (the caller drops its run, no outcome), 0 when it must be
 * dead-lettered: no live worker of the queue handles the type and the
 * entry is older than the grace. */
int jq_types_foreign(jq_types_t *t, int q, const jq_str_t *type, const char *entry_id,
                     long long deliveries, int64_t now);

/* Whether reclaim leaves alone the pending entry id of queue q that
 * consumer holds: one handed back for a type this worker does not handle,
 * while a live worker handles it or the grace is not over. */
int jq_types_leave(const jq_types_t *t, int q, const char *id, const char *consumer, size_t clen,
                   int64_t now);

/* The grace, ms: three heartbeats. */
long long jq_types_grace_ms(const jq_types_t *t);

#endif
