#ifndef JQ_HANDBACK_H
#define JQ_HANDBACK_H

/* The consumers of dead workers, in Redis: what a worker held when it died
 * is handed back to the live ones at once (XPENDING + XCLAIM with a large
 * IDLE, so their next reclaim takes it instead of waiting out the
 * visibility timeout), and its consumer leaves the group once it holds
 * nothing. Consumers orphaned by a whole container gone are swept once a
 * minute. Everything goes through the master's Redis connection; a pass
 * lost to an outage is done again by the next (jq_handback_pass runs at
 * each death and once a second). */

#include <stdint.h>

#include "options.h"
#include "rconn.h"

#define JQ_HANDBACK_MAX 256 /* dead workers handed back at once */

/* A dead worker's consumer, until it holds nothing and left the group. */
typedef struct jq_gone {
    int used;
    char name[320]; /* <host>:<pid> */
    int replies;    /* handback scripts in flight */
    long long held; /* entries still held, summed over queues this pass */
    int passes;
    uint64_t uncount; /* queues (bits) whose deliveries are still to uncount */
} jq_gone_t;

/* Called when a pass handed entries back: tell the live workers to
 * reclaim now rather than on their next reclaim tick. */
typedef void (*jq_handback_fn)(void *data);

typedef struct jq_handback {
    jq_rconn_t *redis;       /* borrowed: the master's */
    const jq_options_t *opt; /* borrowed */
    char host[256];
    int64_t last_sweep_ms;
    jq_handback_fn on_handed;
    void *data;
    jq_gone_t gone[JQ_HANDBACK_MAX];
} jq_handback_t;

void jq_handback_init(jq_handback_t *h, jq_rconn_t *redis, const jq_options_t *opt,
                      const char *host, jq_handback_fn on_handed, void *data);

/* Worker pid exited (clean: status 0, no signal; then what it left was no
 * crash, and each entry's delivery is uncounted). Its consumer is handed
 * back by the following passes. */
void jq_handback_add(jq_handback_t *h, int pid, int clean);

/* One pass over the dead workers' consumers (while Redis is up). */
void jq_handback_pass(jq_handback_t *h);

/* Removes the group's consumers that hold nothing and have not read for
 * 10 minutes, at most once a minute (now_ms tells). */
void jq_handback_sweep(jq_handback_t *h, int64_t now_ms);

#endif
