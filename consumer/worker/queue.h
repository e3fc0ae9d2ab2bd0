#ifndef JQ_QUEUE_H
#define JQ_QUEUE_H

/* One queue a worker serves, by its index q in the worker's queues: its
 * name, its stream's key, whether it is paused, and its health. The worker
 * owns them; the stages borrow them (stage.h).
 *
 * Priority levels: the first *nqueues entries are the --queues, each the
 * normal level (its stream is §1's). Once a queue is seen to use levels
 * (levels.h: its high or low stream exists), its high and low streams are
 * appended as two more entries with the same name, their `base` the
 * queue's index. So acks, trimming, reclaim, hand-back, group creation and
 * health, which work on one stream, cover the levels unchanged; what is
 * once per queue (admission and its limit, pause, promotion, the
 * heartbeat's list, the types set) goes by `base`. */

#include <stdint.h>

#include "keys.h"
#include "options.h"

/* The worker's queues, counting each level of a queue that uses priority
 * levels as a queue of its own (below). */
#define JQ_QSLOTS (JQ_PRIO_N * JQ_QUEUES_MAX)

/* A queue's health, kept by qhealth.c (qhealth.h says how). */
typedef enum {
    JQ_QUEUE_OK = 0,
    JQ_QUEUE_SUSPECT, /* a read covering it failed: probe in flight */
    JQ_QUEUE_BROKEN,  /* its probe failed; probed again later */
} jq_qstate_t;

typedef struct jq_qhealth {
    jq_qstate_t state;
    int probing;      /* a probe is in flight */
    int refused;      /* broken only because Redis refuses all
                                 writes (jq_redis_refuses): not published */
    char error[160];  /* Redis's error while broken */
    int64_t since_ms; /* broken since */
    int64_t next_probe_ms;
} jq_qhealth_t;

typedef struct jq_queue {
    const char *name; /* borrowed from options */
    char stream[JQ_KEY_MAX];
    int paused;          /* 1 paused, 0 not, -1 not known yet
                                     (not read, reclaimed or probed) */
    jq_qhealth_t health; /* qhealth.c: broken queues out of reads */
    /* limit.c: 1 the queue has a rate or concurrency limit, or is slowed
     * down by a handler's retry-after: the ordinary reads leave it out,
     * limit.c reads it with permits; 0 no limit; -1 not known yet (not
     * read). leased: it has a concurrency limit, so its jobs hold leases
     * that reclaim renews and finish releases. */
    int limited;
    int leased;
    /* settings.c: index the last keep_done done jobs in <p>:{<q>}:done;
     * 0 none (-1: the setting is bad, also none). */
    long long keep_done;
    int cancels;        /* its cancel set (<p>:{q}:cancel) holds requests:
                                     1, 0 not, -1 not known yet (cancel.h) */
    int is_level;       /* a high or low level, appended (0: a --queues entry,
                                     the normal level) */
    jq_prio_t level;    /* with is_level: which */
    int base;           /* with is_level: the queue's normal entry */
    int levelled;       /* normal entries: the levels are appended */
    int levels_unknown; /* whether it has levels is not known yet: not
                                     read (as paused -1), so that jobs at
                                     every level waiting at start are read
                                     high first (levels.h) */
    int at[JQ_PRIO_N];  /* levelled normal entries: each level's entry */
} jq_queue_t;

/* The normal entry of entry q's queue: q itself unless q is a level. */
static inline int jq_queue_base(const jq_queue_t *qs, int q) {
    return qs[q].is_level ? qs[q].base : q;
}

/* Whether q is healthy (qhealth.h): a broken or suspect queue is left out
 * of reads, reclaim and promotion. */
static inline int jq_queue_ok(const jq_queue_t *q) { return q->health.state == JQ_QUEUE_OK; }

#endif
