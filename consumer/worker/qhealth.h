#ifndef JQ_QHEALTH_H
#define JQ_QHEALTH_H

/* Queue health: one queue whose keys Redis refuses never stops the others.
 *
 * XREADGROUP over several streams fails as a whole when one of them is
 * broken (its key holds another type: WRONGTYPE; its group or the stream
 * itself was deleted: NOGROUP), and the error does not say which. So a
 * failed read makes every queue it covered a suspect, left out of reads
 * until one probe per queue answers:
 *
 *     XGROUP CREATE <stream> jobq 0 MKSTREAM
 *
 * BUSYGROUP means healthy; OK means the group (or the stream) was missing
 * and is now made again from id 0, so nothing enqueued meanwhile is
 * skipped; any other error (WRONGTYPE) means broken: logged once, left out
 * of reads, reclaim and promotion, and probed again every
 * JQ_QHEALTH_RETRY_MS. While broken, the queue's key <p>:{q}:broken (a
 * hash: error, since, worker; PROTOCOL §7) says so to `jobq stats`, with
 * a TTL of three retries so that it vanishes with the last worker that saw
 * it. When a probe succeeds the queue is served again and the key deleted.
 * A probe refused because Redis refuses every write (READONLY, OOM...:
 * jq_redis_refuses) says so instead: the queue is fine, nothing is
 * published (it could not be written), and it is probed again every
 * JQ_QHEALTH_REFUSED_RETRY_MS.
 *
 * The state lives in each jq_queue_t (queue.h: jq_qhealth_t); probes go on
 * the write connection, as the fetch connection is blocked in its read. */

#include <stdint.h>

#include "stage.h"

#define JQ_QHEALTH_RETRY_MS 3000
/* While Redis refuses every write (the queue is fine), asked more often:
 * reads resume within this of Redis taking writes again. */
#define JQ_QHEALTH_REFUSED_RETRY_MS 250

struct jq_fetch;

/* The stage's state (w->qhealth): what it borrows from the worker. The
 * per-queue record (jq_qhealth_t) is in each queue (queue.h). */
typedef struct jq_qhealth_stage {
    jq_stage_env_t env;     /* borrowed from the worker (stage.h) */
    struct jq_fetch *fetch; /* borrowed: a read held back for the
                                     probes goes once they answered
                                     (jq_fetch_retry) */
} jq_qhealth_stage_t;

/* Readies qh with what it borrows (a copy of env; fetch outlives qh). */
void jq_qhealth_init(jq_qhealth_stage_t *qh, const jq_stage_env_t *env, struct jq_fetch *fetch);

/* Whether err is Redis refusing every write for a while, whatever the key
 * (out of memory, a read-only replica, a failed save, loading, a busy
 * script): then no queue is at fault. */
int jq_redis_refuses(const char *err);

/* A read over the queues that jq_queue_ok (queue.h) allowed failed with err:
 * suspects them all and probes each. */
void jq_qhealth_read_failed(jq_qhealth_stage_t *qh, const char *err);

/* Another command on queue q's keys failed with err (e.g. XPENDING in a
 * reclaim): WRONGTYPE or NOGROUP make it a suspect and probe it. Other
 * errors are not about the queue and are ignored here. */
void jq_qhealth_key_error(jq_qhealth_stage_t *qh, int q, const char *err);

/* From the worker's tick: probes broken queues that are due, and keeps
 * their broken keys alive. */
void jq_qhealth_tick(jq_qhealth_stage_t *qh, int64_t now);

#endif
