#ifndef JQ_LEVELS_H
#define JQ_LEVELS_H

/* Priority levels within a queue (PROTOCOL.md, "Priorities"): a job
 * enqueued at high goes to <p>:{q}:stream:high, at low to
 * <p>:{q}:stream:low, at normal to the queue's stream of §1. A worker
 * reads high before normal before low, FIFO within a level.
 *
 * Paid for only by the queues that use them. A worker learns that a queue
 * uses levels when its high or low stream exists, asked with one EXISTS
 * per queue beside the pause check (jq_levels_check, at most every
 * 100 ms), never per read. Until then the queue is read exactly as
 * before. Then its two streams are appended to the worker's queues
 * (queue.h), their groups created, and from there on:
 *
 *  - a read of the queue is a small script (jq_levels_read): XREADGROUP of
 *    the high stream with the queue's free slots as COUNT, then of normal
 *    with what is left, then of low with what is left. One round trip,
 *    never more entries than slots: an XREADGROUP of the three streams at
 *    once takes COUNT from each, and reading them with COUNT free / 3
 *    would stop reading high while normal waits. It goes on the write
 *    connection (no BLOCK in a script), like the reads behind the acks.
 *  - when a script read brings fewer entries than it asked, the levels are
 *    empty: the queue is "dry" for up to the blocking read's time, and the
 *    blocking XREADGROUP covers its three streams, so that a job at any
 *    level wakes the worker. A blocking read takes COUNT from each stream,
 *    so a dry queue's share of it is split three ways (fetch.c). What it
 *    brings is all that came since the levels were empty, high, normal
 *    and low alike, taken in that order; then scripts again.
 *
 * The state (which queues are dry, which have a script read in flight)
 * is fetch's (jq_fetch_t); these functions are its helpers. */

#include <stdint.h>

#include "fetch.h"

/* From the pause check: asks whether each queue not yet levelled has a
 * high or low stream; if so, appends its levels (see above). */
void jq_levels_check(jq_fetch_t *f);

/* Whether base queue q has its levels and is to be read by a script now
 * (not dry at now_ms, no script read of it in flight). */
int jq_levels_scripted(const jq_fetch_t *f, int q, int64_t now_ms);

/* Sends the script read of levelled queue q for res->count[q] entries,
 * on the write connection; res (q's part of a plan) is given back when
 * the reply is in. Returns 0, or -1 when not sent (the caller gives res
 * back). */
int jq_levels_read(jq_fetch_t *f, int q, const jq_admit_read_t *res);

/* Entries in an XREADGROUP-shaped reply (a read's or a script's). */
long long jq_levels_entries(const redisReply *reply);

#endif
