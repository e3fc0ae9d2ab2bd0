#ifndef JQ_QUEUE_H
#define JQ_QUEUE_H

/* One queue a worker serves, by its index q in the worker's queues: its
 * name, its stream's key, whether it is paused, and its health. The worker
 * owns them; the stages borrow them (stage.h). */

#include "keys.h"
#include "qhealth.h"

typedef struct jq_queue {
    const char *name;             /* borrowed from options */
    char stream[JQ_KEY_MAX];
    int paused;                   /* 1 paused, 0 not, -1 not known yet
                                     (not read, reclaimed or probed) */
    jq_qhealth_t health;          /* qhealth.c: broken queues out of reads */
} jq_queue_t;

/* Whether q is healthy (qhealth.h): a broken queue is left out of reads. */
static inline int jq_queue_ok(const jq_queue_t *q) { return q->health.state == JQ_QUEUE_OK; }

#endif
