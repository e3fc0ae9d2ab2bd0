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
 * The state lives in each jq_queue_t (worker.h); probes go on the write
 * connection, as the fetch connection is blocked in its read. */

#include <stdint.h>

#define JQ_QHEALTH_RETRY_MS 3000
/* While Redis refuses every write (the queue is fine), asked more often:
 * reads resume within this of Redis taking writes again. */
#define JQ_QHEALTH_REFUSED_RETRY_MS 250

typedef struct jq_worker jq_worker_t;

typedef enum {
    JQ_QUEUE_OK = 0,
    JQ_QUEUE_SUSPECT, /* a read covering it failed: probe in flight */
    JQ_QUEUE_BROKEN,  /* its probe failed; probed again later */
} jq_qstate_t;

typedef struct jq_qhealth {
    jq_qstate_t state;
    int probing;              /* a probe is in flight */
    int refused;              /* broken only because Redis refuses all
                                 writes (jq_redis_refuses): not published */
    char error[160];          /* Redis's error while broken */
    int64_t since_ms;         /* broken since */
    int64_t next_probe_ms;
} jq_qhealth_t;

/* Whether err is Redis refusing every write for a while, whatever the key
 * (out of memory, a read-only replica, a failed save, loading, a busy
 * script): then no queue is at fault. */
int jq_redis_refuses(const char *err);

/* Whether queue q may be read, reclaimed and promoted now. */
int jq_qhealth_ok(const jq_worker_t *w, int q);

/* A read over the queues that jq_qhealth_ok allowed failed with err:
 * suspects them all and probes each. */
void jq_qhealth_read_failed(jq_worker_t *w, const char *err);

/* Another command on queue q's keys failed with err (e.g. XPENDING in a
 * reclaim): WRONGTYPE or NOGROUP make it a suspect and probe it. Other
 * errors are not about the queue and are ignored here. */
void jq_qhealth_key_error(jq_worker_t *w, int q, const char *err);

/* From the worker's tick: probes broken queues that are due, and keeps
 * their broken keys alive. */
void jq_qhealth_tick(jq_worker_t *w, int64_t now);

#endif
