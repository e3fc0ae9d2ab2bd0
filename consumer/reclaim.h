#ifndef JQ_RECLAIM_H
#define JQ_RECLAIM_H

/* Crash safety (PROTOCOL §6), the worker's half:
 *   - renewal: every visibility/3 the worker re-stamps the entries it holds
 *     (XCLAIM ... JUSTID to itself), so a long job is never taken from it;
 *   - reclaim: with free slots, it takes entries idle past the visibility
 *     timeout (a vanished consumer's, or a dead worker's that the master
 *     handed back) with XPENDING IDLE + XCLAIM, and runs them. An entry
 *     delivered more times than its job's attempts allow is dead-lettered
 *     with "worker lost" instead of run: a poison job cannot crash-loop the
 *     cluster. */

#include <stdint.h>

struct jq_worker;

void jq_reclaim_tick(struct jq_worker *w, int64_t now);

/* After a reconnect: takes back our own pending entries that a read whose
 * reply was lost delivered to us, so they run now rather than after the
 * visibility timeout. Call after renewing and flushing. */
void jq_reclaim_own(struct jq_worker *w);

#endif
