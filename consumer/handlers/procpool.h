#ifndef JQ_PROCPOOL_H
#define JQ_PROCPOOL_H

/* Long-lived handler processes: `--proc TYPES=COMMAND` registers an io
 * handler for each job type of TYPES (`resize` or `resize+thumb`) and gives
 * every worker a pool of --proc-count COMMAND processes that run them. Jobs
 * go to a process over its stdin and come back on its stdout as frames
 * (procwire.h; docs/HANDLERS.md), many at once when its hello says it can
 * (max_inflight); its stderr is the worker's.
 *
 * Each process runs under the exec guard (exec_guard.h): nothing it starts
 * outlives it, and it dies with its worker, even by SIGKILL. The pool
 * supervises them on the worker's loop:
 *   - a process that exits, or breaks the protocol (a malformed frame, a
 *     frame over --max-payload, a reply to no job), is killed with a log
 *     line naming why; the jobs it held fail and are retried; it is started
 *     again after a backoff (100 ms, doubling to 10 s; reset by a served
 *     job), and jobs wait meanwhile; one that dies before its hello fails
 *     the waiting jobs too when no other process of its pool is up;
 *   - a job past its timeout is failed as any handler's, and its process
 *     gets a cancel frame; if it has not answered within 1 s it is killed;
 *   - after --proc-max-jobs jobs, or above --proc-max-rss-mb, a process is
 *     recycled: a new one starts, the old one gets no more jobs and its
 *     stdin is closed once it holds none (it should exit; killed after 2 s).
 * A worker without --proc pays nothing: no timer, no process. */

#include <stddef.h>
#include <uv.h>

#include "registry.h"

struct jq_options;

#define JQ_PROCPOOL_MAX 16       /* --proc entries */
#define JQ_PROCPOOL_TYPES_MAX 16 /* job types of one entry */
#define JQ_PROCPOOL_COUNT_MAX 64 /* --proc-count */

/* Registers the handlers of every --proc entry of o, checking each (types
 * valid, COMMAND well quoted and its program executable: exec_cmd.h).
 * Starts nothing. Returns 0, or -1 with err naming the entry. */
int jq_procpool_register(jq_registry_t *r, const struct jq_options *o, char *err, size_t errlen);

/* Starts every pool's processes on loop: a worker calls it once, before
 * its first job. Returns 0, or a libuv error (the timer's). */
int jq_procpool_start(uv_loop_t *loop);

/* Stops every process (their guards kill them) and closes the pool's
 * handles: the loop can end once their exits are seen. Jobs still held
 * fail. Nothing starts again. */
void jq_procpool_stop(void);

#endif
