#ifndef JQ_EXEC_H
#define JQ_EXEC_H

/* External commands as job handlers: `--exec NAME=COMMAND` registers an io
 * handler NAME that runs COMMAND for each job, through the guard of
 * exec_guard.h, with uv_spawn on the worker's loop.
 *
 * The job chooses only NAME. COMMAND is split into words at start (quotes
 * and backslashes as in a shell, nothing expanded) and run without a shell,
 * with an environment of JOBQ_JOB_ID, JOBQ_QUEUE, JOBQ_ATTEMPT and the
 * variables --exec-env names. The payload goes to its stdin: a str or bin
 * payload as its raw bytes, anything else as msgpack (--exec-stdin auto,
 * the default), or always msgpack, or always JSON. Its stdout is the result
 * (a msgpack str when it is UTF-8, else bin), and more than
 * --exec-max-output bytes fails the attempt. A non-zero exit or a signal
 * fails it with the tail of stderr. The job's timeout kills the command and
 * everything it started. */

#include <stddef.h>

#include "registry.h"

struct jq_options;

#define JQ_EXEC_MAX 32 /* --exec commands */

/* Registers one handler per --exec entry of o. Checks every entry: NAME
 * valid, COMMAND well quoted, its program found (PATH is searched here,
 * once) and a regular file we may execute (exec_cmd.h); each --exec-env
 * name valid. Returns 0, or -1 with err naming the entry, the path and the
 * reason. What it keeps lives in static storage for the life of the
 * process. */
int jq_exec_register(jq_registry_t *r, const struct jq_options *o, char *err, size_t errlen);

#endif
