#ifndef JQ_MASTER_H
#define JQ_MASTER_H

/* The master process: spawns --workers worker processes (this same binary,
 * re-executed with --worker-role), does no job work itself, and keeps the
 * cluster whole:
 *   - a worker that exits is replaced, with exponential backoff while it
 *     keeps crashing; each exit is logged with its cause;
 *   - the entries a dead worker held are handed back at once (XPENDING +
 *     XCLAIM with a large IDLE), so live workers reclaim them on their next
 *     tick instead of after the visibility timeout; its consumer leaves the
 *     group once it holds nothing;
 *   - SIGTERM/SIGINT drain every worker and exit 0 when all have exited; a
 *     second signal stops them at once;
 *   - SIGHUP rolls: one worker at a time, a replacement is serving ("ready")
 *     before the old worker is told to drain;
 *   - a worker asking to be recycled (max jobs, max RSS, stuck cpu thread)
 *     gets its replacement the same way.
 * Master and worker talk through a pipe on the worker's fd 3, one line
 * per message: from the worker "ready" and "recycle <why>", from the
 * master "stop" (the second signal: stop at once, leaving unfinished jobs
 * pending), "reclaim" (a dead worker's entries were handed back: take
 * them now) and "switch-master S PORT OLD PORT NEW PORT" (the sentinels
 * switched the master: switchsub.h). SIGTERM to a worker means drain.
 *
 * The decisions (when, which, how long to wait) are supervise.c's, pure
 * and unit-tested; workers.c carries them out on the processes; handback.c
 * gives back what dead workers held; master.c starts and ends it all. */

#include "options.h"

/* Exit statuses of the master. */
#define JQ_MASTER_EXIT_CONFIG 2 /* Redis refused our AUTH/SELECT at start */
#define JQ_MASTER_EXIT_INIT 3   /* a handle or allocation failed at start */

/* Runs the master until shutdown. argv is the master's own, passed on to
 * the workers. Workers are started once Redis accepted the master's
 * connection (AUTH, SELECT); a refusal then is a configuration error:
 * logged once, JQ_MASTER_EXIT_CONFIG. Returns the process exit status. */
int jq_master_main(const jq_options_t *opt, int argc, char **argv);

#endif
