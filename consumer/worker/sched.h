#ifndef JQ_SCHED_H
#define JQ_SCHED_H

/* Time-driven duties of a worker, run from its tick: promoting due jobs
 * from <p>:{q}:scheduled into the stream (PROTOCOL §2) and trimming the dead
 * set (§4). Both are Lua scripts, so each move is atomic: with many
 * consumers promoting at once a job is promoted exactly once, and a consumer
 * that dies between two steps leaves nothing half done. */

#include <stdint.h>

struct jq_worker;

/* Loads the scripts (SCRIPT LOAD) on a fresh connection; their SHA1s for
 * EVALSHA are Redis's answers. Until both have come, the tick sends none
 * (and asks again if a load failed). */
void jq_sched_on_connect(struct jq_worker *w);

/* Promotes due jobs of every queue, and now and then trims dead sets. */
void jq_sched_tick(struct jq_worker *w, int64_t now);

/* The scripts' text, for tests and docs. */
extern const char jq_sched_promote_lua[];
extern const char jq_sched_trim_lua[];

#endif
