#ifndef JQ_UNIQUE_H
#define JQ_UNIQUE_H

/* Unique jobs (docs/PROTOCOL.md §10): the two scripts every client and the
 * consumer share. A producer enqueues through jq_unique_enqueue_lua, which
 * takes the key <p>:{<q>}:unique:<KEY> and adds the job in one atomic step
 * (never a check, then a write); the job's entry carries `unique KEY` (and
 * `unique_until MS` with a hold time), and the worker that ends the job
 * gives the key back with jq_unique_release_lua, in the same MULTI as the
 * job's outcome. Here so that the text documented, the text the CLI sends
 * and the text the worker sends are one. */

/* EVAL jq_unique_enqueue_lua 2 <unique key> <stream> KEY HOLD_MS 0 field value ...
 * EVAL jq_unique_enqueue_lua 4 <unique key> <stream> <job hash> <scheduled>
 *      KEY HOLD_MS DUE_MS field value ...   (a delayed job: its fields hold `id`)
 * Returns {1, job id} when it added the job, {0, holder's id} when the key
 * was held (nothing added). */
extern const char jq_unique_enqueue_lua[];

/* EVAL jq_unique_release_lua 1 <unique key> <job id> <unique_until or "">:
 * deletes the key if it still holds this job's id (or, with unique_until,
 * lets it expire then: PEXPIREAT). Returns 1 if it released it, else 0. */
extern const char jq_unique_release_lua[];

/* The longest hold, in ms (--unique-for): a year. */
#define JQ_UNIQUE_FOR_MAX (366LL * 24 * 3600 * 1000)

#endif
