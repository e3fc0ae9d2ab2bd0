#ifndef JQ_ADMIT_H
#define JQ_ADMIT_H

/* Admission: how many entries the worker may read from each queue now.
 *
 * A worker has two kinds of slots: io slots (--io-concurrency, jobs on the
 * loop) and cpu slots (its threads plus a prefetch of as many again, so a
 * thread that finishes finds its next job here). An entry holds a slot of
 * its handler's kind from the moment it is read until its run is freed
 * (its ack answered), so the worker never holds, pending in Redis, more
 * than it can run: an idle worker elsewhere gets the rest.
 *
 * A queue's kind is learned from the last 64 jobs read from it:
 *   io     read with the free io slots: never held back by a busy pool;
 *   cpu    read with the free cpu slots: not read at all while they are
 *          taken, so its entries wait in Redis, not in this worker;
 *   mixed  (both kinds seen) read with the smaller of the two, so the
 *          queue stays FIFO: its io jobs wait, at most, for the cpu jobs
 *          ahead of them in the same queue;
 *   unknown (nothing read yet) as mixed, but with at least one entry even
 *          while the cpu slots are taken, so that a queue is learned.
 * So the cpu entries one worker holds beyond its threads are bounded by
 * the prefetch, plus one per queue not learned yet, plus (once, when a
 * producer changes what a queue carries) one read of the queue's old kind.
 *
 * A per-queue limit (--queues name=N) caps the entries of that queue held
 * at once, whatever their kind.
 *
 * A queue's priority levels (queue.h) are one queue here: every call
 * about a level's entry q counts for its base (jq_admit_group), and a plan
 * has counts for base queues only; fetch divides them among the levels.
 *
 * Pure bookkeeping, no I/O: the worker tells it what it reads, holds and
 * frees, and asks it for the COUNTs of its next read. */

#include <stdint.h>

#include "handlers.h"
#include "options.h"
#include "queue.h"

typedef enum {
    JQ_QKIND_UNKNOWN,
    JQ_QKIND_IO,
    JQ_QKIND_CPU,
    JQ_QKIND_MIXED,
} jq_qkind_t;

typedef struct jq_admit_queue {
    long long limit;    /* 0: none */
    long long held;     /* entries read and not yet freed */
    long long reserved; /* COUNTs of reads in flight */
    long long sent;     /* held, whose ack is sent but not answered */
    uint64_t history;   /* kinds of the last jobs read: bit set = cpu */
    int seen;           /* jobs in history (at most 64) */
    int base;           /* the queue this entry counts for (itself) */
    long long weight;   /* its shares of each read's free slots (1) */
} jq_admit_queue_t;

typedef struct jq_admit {
    long long cap[2]; /* [JQ_KIND_IO], [JQ_KIND_CPU]: slots */
    long long held[2], reserved[2], sent[2];
    long long finished[2]; /* held, attempt ended, ack not yet answered */
    long long read_ahead;  /* of those, how many a read may count as free */
    long long read_max;    /* entries one read may take, all its queues
                              together (0: no bound but the slots) */
    int nqueues;
    unsigned turn; /* which queue gets the odd slot first */
    jq_admit_queue_t q[JQ_QSLOTS];
} jq_admit_t;

/* What one read asked for, to be given back when its reply is in. A plan
 * may be split over several reads: each takes its queues' count[] and
 * uses[] and leaves the others 0. */
typedef struct jq_admit_read {
    long long count[JQ_QSLOTS];
    unsigned char uses[JQ_QSLOTS]; /* slots reserved: bit 0 io, bit 1 cpu */
} jq_admit_read_t;

/* io_slots, cpu_slots > 0; limits[q] (0: none) for nqueues queues. */
void jq_admit_init(jq_admit_t *a, long long io_slots, long long cpu_slots, int nqueues,
                   const long long *limits);

/* Entry q (a priority level, queue.h) counts for queue base from now on;
 * the queues a plan covers grow to q + 1. */
void jq_admit_group(jq_admit_t *a, int q, int base);

/* Weights (--queues name/W): queue q gets weights[q] shares of the free
 * slots each plan splits among the queues to read, instead of one each.
 * Only the plans change: no command more. */
void jq_admit_set_weights(jq_admit_t *a, const long long *weights, int n);

/* A job of kind k was read from queue q: learn from it. */
void jq_admit_learn(jq_admit_t *a, int q, jq_kind_t k);
jq_qkind_t jq_admit_qkind(const jq_admit_t *a, int q);
const char *jq_admit_qkind_name(jq_qkind_t k);

/* One entry of queue q takes (delta +1) or gives back (-1) a slot of kind
 * k; sent: its ack is on its way (+1) or answered or lost (-1). */
void jq_admit_hold(jq_admit_t *a, int q, jq_kind_t k, int delta);
void jq_admit_sent(jq_admit_t *a, int q, jq_kind_t k, int delta);
/* An entry's attempt ended (+1; its thread or io slot is free, it waits
 * for its ack), or it was freed (-1). */
void jq_admit_finished(jq_admit_t *a, jq_kind_t k, int delta);

/* Read-ahead: up to n finished entries whose ack is not yet answered may
 * count as free for any read, not only for a read sent behind the acks on
 * the same connection. Then a read can run ahead of the acks: the worker
 * fetches its next batch while the last one's EXEC is on its way, so
 * Redis and the worker overlap. The bound: a worker never holds more
 * entries it has not finished than its slots, so it hoards nothing an
 * idle worker could run; Redis may see up to n more pending for a moment.
 * 0 (the default of jq_admit_init): strict. */
void jq_admit_set_read_ahead(jq_admit_t *a, long long n);

/* At most n entries per blocking read, all its queues together (n >= 1;
 * 0: no bound but the free slots); a read behind the acks (ahead) takes
 * the free slots. The worker sets it from --max-payload, so that the
 * blocking read, which may be skipping oversized payloads for seconds,
 * leaves slots for a read aside (worker.h). */
void jq_admit_set_read_max(jq_admit_t *a, long long n);

/* Plans a read: out->count[q] entries of each queue not skipped (skip[q]
 * set: paused), reserved until jq_admit_unreserve(out). ahead: the read
 * is sent behind the acks on the same connection, so entries whose ack is
 * sent count as free. same_count: one COUNT for every queue read (a
 * blocking XREADGROUP has one), the smallest. Returns the total. */
long long jq_admit_plan(jq_admit_t *a, const int *skip, int ahead, int same_count,
                        jq_admit_read_t *out);
void jq_admit_unreserve(jq_admit_t *a, const jq_admit_read_t *rd);

/* Free slots of queue q for a reclaim: as jq_admit_plan would give it
 * alone, but not counting the reservations of reads in flight (the
 * blocking read nearly always is, and reserves every free slot while it
 * waits), so a reclaim may bring up to that read's COUNT more. Never
 * negative. */
long long jq_admit_free(const jq_admit_t *a, int q);
/* The most entries of queue q one worker holds at once: its io plus cpu
 * slots, or q's limit if lower. */
long long jq_admit_capacity(const jq_admit_t *a, int q);
/* Entries whose ack is sent, not yet answered: a read sent behind those
 * acks may count their slots (jq_admit_plan's ahead). */
static inline long long jq_admit_acking(const jq_admit_t *a) {
    return a->sent[JQ_KIND_IO] + a->sent[JQ_KIND_CPU];
}

#endif
