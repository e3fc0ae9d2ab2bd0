#ifndef JQ_LIMIT_H
#define JQ_LIMIT_H

/* Rate and concurrency limits across every consumer (docs/PROTOCOL.md,
 * "Limits"), the worker's half.
 *
 * A queue's limit is the hash <p>:{q}:limit (rate, period_ms,
 * concurrency), set by `jobq limit set` or any client. The worker learns
 * which of its queues have one by polling those hashes about once a
 * second, and whether one is slowed down by a handler's "retry after"
 * with the PTTL of <p>:{q}:backoff on each tick (as the pause check),
 * never per batch: a queue without a limit costs nothing more per job.
 *
 * A limited queue is left out of the ordinary reads (fetch.h) and read
 * here instead, by one script that grants up to `free` permits (rate
 * tokens from a bucket in <p>:{q}:bucket, concurrency leases in the zset
 * <p>:{q}:leases, member the entry id, score its expiry), then claims
 * idle entries (a dead worker's) and reads new ones, no more than it
 * granted, and takes only the permits of what it brought: no permit is
 * ever left unused, and no job waits in a worker's memory for one. The
 * script says when the next token comes; until then the queue is not
 * asked for again (other queues keep going).
 *
 * Leases are renewed with the worker's held entries (reclaim.c), released
 * in the outcome's MULTI (finish.c), and expire after the visibility
 * timeout when their worker dies.
 *
 * Its state is a jq_limit_t embedded in the worker (w->limit). Commands
 * go on the worker's write connection. */

#include <stdint.h>
#include <hiredis/hiredis.h>

#include "args.h"
#include "admit.h"
#include "fetch.h"
#include "finish.h"
#include "stage.h"

/* What limit borrows besides the stages' env (stage.h); all outlive it. */
typedef struct jq_limit_borrow {
    jq_fetch_t *fetch;   /* what the script brings is taken in there */
    jq_finish_t *finish; /* while it holds, no read */
    const int *draining; /* the worker drains: no new read */
} jq_limit_borrow_t;

typedef struct jq_limit jq_limit_t;

/* One queue's limit as last read, and its reads. */
typedef struct jq_limit_queue {
    jq_limit_t *l;
    int q;
    long long rate, period_ms; /* rate per period; 0: none */
    long long concurrency;     /* 0: none */
    int64_t slow_until_ms;     /* a retry-after: not read before */
    int64_t next_ms;           /* the next permit: not asked before */
    int asking;                /* a script is in flight */
    jq_admit_read_t res;       /* what it reserved */
    int known;                 /* its limit hash has been read */
    int warned;                /* a bad field was logged */
    long long held_back;       /* permits the limit refused while jobs
                                  waited (a counter) */
    long long leases;          /* leases held, all workers, last seen */
} jq_limit_queue_t;

struct jq_limit {
    jq_stage_env_t env;   /* borrowed from the worker (stage.h) */
    jq_limit_borrow_t b;  /* borrowed too (above) */
    int64_t last_poll_ms; /* the limit hashes' last poll */
    int nlimited;         /* queues read here */
    jq_args_t args;
    jq_limit_queue_t q[JQ_QSLOTS];
};

/* How often the limit hashes are read, and a limited queue with nothing to
 * read (or no free slot of its concurrency) is asked again. */
#define JQ_LIMIT_POLL_MS 1000
#define JQ_LIMIT_RETRY_MS 100

void jq_limit_init(jq_limit_t *l, const jq_stage_env_t *env, const jq_limit_borrow_t *b);
void jq_limit_destroy(jq_limit_t *l);

/* From the worker's tick (every 100 ms): reads every queue's backoff key
 * (PTTL: one command per queue, sent with the pause checks), and its
 * limit hash once a JQ_LIMIT_POLL_MS (the first call at once); then asks
 * for the permits that are due. */
void jq_limit_tick(jq_limit_t *l, int64_t now);
/* Slots may be free (fetch kicked): reads each limited queue whose next
 * permit is due. Returns the ms until the next one is due (0: due, but
 * no slot was free), or -1: nothing when no queue is limited. */
int64_t jq_limit_kick(jq_limit_t *l);
/* A handler answered "retry after ms" for a job of queue q: the queue is
 * not read by this worker for ms (the others learn it from the backoff
 * key that finish.c sets). */
void jq_limit_slow(jq_limit_t *l, int q, int64_t until_ms);
/* Whether a script is in flight: a drain waits for it, since what it
 * read is ours to run. */
int jq_limit_busy(const jq_limit_t *l);

/* The script's text, for tests. */
extern const char jq_limit_lua[];

#endif
