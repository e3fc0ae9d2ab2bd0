#ifndef JQ_FETCH_H
#define JQ_FETCH_H

/* Fetching, the worker's first stage: XREADGROUP sized by admission
 * (admit.h), each entry taken in as a run (run.h), its
 * payload decoded, and the run handed to the worker to start, or
 * dead-lettered at once when malformed.
 *
 * Its state is a jq_fetch_t embedded in the worker (w->fetch), with what
 * it borrows: the stages' env (stage.h) and a jq_fetch_borrow_t. The
 * blocking read goes on the worker's fetch connection; reads behind the
 * acks, pause checks and CLIENT UNBLOCK on its write connection. Replies
 * are taken in during their callback: an entry's fields are copied out of
 * the reply (reply.h) and owned by its run from then on. */

#include <stdint.h>
#include <hiredis/hiredis.h>

#include "admit.h"
#include "args.h"
#include "chunks.h"
#include "finish.h"
#include "handlers.h"
#include "job.h"
#include "rconn.h"
#include "run.h"
#include "stage.h"
#include "types.h"

/* What fetch borrows besides the stages' env (stage.h); all outlive it. */
typedef struct jq_fetch_borrow {
    jq_rconn_t *rfetch;            /* the blocking read's own connection */
    const jq_registry_t *reg;      /* job type -> handler */
    const jq_job_limits_t *limits; /* what an entry may hold (job.h) */
    jq_runs_t *runs;               /* where runs come from (run.h) */
    jq_chunks_t *chunks;           /* chunked payloads are loaded there */
    jq_finish_t *finish;           /* dead letters go there; while it holds
                                     or has outcomes to send, no read */
    const int *draining;           /* the worker drains: no new read */
    jq_types_t *types;             /* types other workers handle (types.h);
                                     NULL: an unknown type is dead at once */
    /* Queue health (qhealth.h), called with env.worker: a read failed with
     * err (no queue named), or queue q's key answered err. */
    void (*read_failed)(void *worker, const char *err);
    void (*key_error)(void *worker, int q, const char *err);
    /* Reads the queues with a rate or concurrency limit (limit.h), which
     * the reads here leave out; called with env.worker at each kick,
     * before the reads here take the free slots. Returns the ms until it
     * reads again (the blocking read waits no longer, so that its slots
     * come back in time), or -1. NULL: no limits. */
    int64_t (*limit_kick)(void *worker);
    /* Queue q's cancel set holds requests (1) or not (0), as the pause
     * check just learned (cancel.h); NULL: nobody listens. */
    void (*cancels)(void *worker, int q, int any);
    int *nqueues; /* the worker's count of queues (env.nqueues), which
                     grows by two when a queue is seen to use priority
                     levels (levels.h) */
} jq_fetch_borrow_t;

typedef struct jq_fetch jq_fetch_t;

/* A queue's index with its stage, as a reply's callback argument. */
typedef struct jq_fetch_qref {
    jq_fetch_t *f;
    int q;
} jq_fetch_qref_t;

struct jq_fetch {
    jq_stage_env_t env;   /* borrowed from the worker (stage.h) */
    jq_fetch_borrow_t b;  /* borrowed too (above) */
    int reading;          /* the blocking XREADGROUP is in flight */
    unsigned read_seq;    /* blocking reads sent so far */
    unsigned unblock_seq; /* the read an unblock is for (fetch.c) */
    int unblock_tries;
    jq_admit_read_t res; /* what that read reserved */
    int pipe_reads;      /* reads sent behind the acks on the write
                                     connection, not yet answered: a drain
                                     waits for them */
    long long client_id; /* CLIENT ID of the fetch connection, for
                                     CLIENT UNBLOCK (0: not known) */
    int backoff;         /* a read failed: wait for the next tick */
    int taking;          /* a read's entries are being taken in:
                                     kicks wait for the end (take_reply) */
    int64_t last_pause_check_ms;
    jq_args_t args; /* each command's argv, reused */
    jq_fetch_qref_t qref[JQ_QSLOTS];
    /* Priority levels (levels.h), by a levelled queue's normal entry: */
    int64_t dry_until[JQ_QSLOTS];        /* its levels were empty: left to
                                            the blocking read until then */
    unsigned char lv_reading[JQ_QSLOTS]; /* its script read is in flight */
    unsigned char in_block[JQ_QSLOTS];   /* the blocking read covers it */
    /* Redis Cluster: one blocking read per slot (reading counts them);
     * by entry, one of them covers it. */
    unsigned char blocked[JQ_QSLOTS];
    /* --queue-order strict (jq_fetch_kick): by base queue, its last read
     * brought fewer than asked, so the walk down --queues passes it until
     * a read comes back full or the blocking read returns. */
    unsigned char empty[JQ_QSLOTS];
};

/* Readies f with what it borrows (copies of env and b). */
void jq_fetch_init(jq_fetch_t *f, const jq_stage_env_t *env, const jq_fetch_borrow_t *b);
/* Frees the builder's memory, after the loop ended. */
void jq_fetch_destroy(jq_fetch_t *f);

/* Sends the reads that admission allows now, if none is in flight. */
void jq_fetch_kick(jq_fetch_t *f);
/* The blocking read is bringing a payload over the cap, which Redis may
 * take seconds to send and the worker discards (bulkcap.h): read what
 * else is waiting, with the slots that read left free, on the write
 * connection meanwhile (a read as behind the acks, at most one at a
 * time). */
void jq_fetch_aside(jq_fetch_t *f);

/* The fetch connection is up (again): asks its CLIENT ID and creates each
 * queue's group (XGROUP CREATE ... MKSTREAM; BUSYGROUP is fine). */
void jq_fetch_connected(jq_fetch_t *f);

/* Creates queue q's group on c (XGROUP CREATE ... 0 MKSTREAM; BUSYGROUP
 * is fine, WRONGTYPE goes to key_error). */
void jq_fetch_create_group(jq_fetch_t *f, jq_rconn_t *c, int q);

/* From the worker's timer: asks whether each queue is paused and whether
 * it has cancel requests (queue.h, cancels), at most every
 * pause_every_ms. A queue whose state is not known yet is not read. */
void jq_fetch_check_paused(jq_fetch_t *f, int64_t now, int64_t pause_every_ms);

/* --queue-order strict: a read of base queue q asked for `asked` entries
 * and brought `got`: fewer, and q counts as empty for the walk; as many,
 * and the next read starts again from the first queue. */
void jq_fetch_strict_got(jq_fetch_t *f, int q, long long asked, long long got);

/* Ends the wait after a failed read and reads again (the tick, and
 * qhealth.c once its probes answered). */
void jq_fetch_retry(jq_fetch_t *f);

/* Cuts the blocking read short (a drain, a pause): unblocked, it returns
 * as if it timed out, having delivered nothing. */
void jq_fetch_unblock(jq_fetch_t *f);

/* Takes in every entry of an XREADGROUP-shaped reply (a read's or a
 * script's), then the caller kicks. */
void jq_fetch_take(jq_fetch_t *f, redisReply *reply);
/* A read sent on the write connection (pipe_reads) is answered: gives
 * back its reservation res, kicks, and lets a drain end. */
void jq_fetch_piped_done(jq_fetch_t *f, const jq_admit_read_t *res);

/* Whether the blocking read is in flight: a drain waits for it, since
 * Redis may have delivered entries to us already. */
int jq_fetch_busy(const jq_fetch_t *f);

/* Takes an entry read from queue q (fields: its field array, or NULL)
 * that has been delivered `deliveries` times, counting this one. The run
 * keeps a copy of the fields (jq_reply_fields_fill: big strings are moved
 * out of the reply, which is otherwise untouched). */
void jq_fetch_intake(jq_fetch_t *f, int q, const char *entry_id, redisReply *fields,
                     long long deliveries);
/* Reply shapes, checked before any id is read: an entry [id, fields] as
 * XREADGROUP and XCLAIM give it, and an extended XPENDING row [id,
 * consumer, idle, deliveries]; the id a string that fits an entry id. */
int jq_fetch_entry_ok(const redisReply *e);
int jq_fetch_pending_ok(const redisReply *e);
/* Decodes r's inline payload, or returns -1 with err (dead-letter reason). */
int jq_fetch_decode_payload(jq_run_t *r, char *err, size_t errlen);

#endif
