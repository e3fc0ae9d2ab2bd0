#ifndef JQ_EXEC_RUN_H
#define JQ_EXEC_RUN_H

/* Running one exec job: the guard (exec_guard.h) spawned with uv_spawn on
 * the worker's loop, its three pipes watched, and the outcome handed to the
 * task. These are the start and cancel of every exec handler (exec.h);
 * t->handler->data is the jq_exec_cmd_t to run. */

#include <jobq/handler.h>

/* A command that exits with this status fails its job for good: dead at
 * once, never retried (EX_DATAERR of sysexits.h: the input was wrong). */
#define JQ_EXEC_EXIT_PERMANENT 65

/* Starts a run of t's command. Returns 0 (jq_task_done follows, once the
 * guard has exited and both its output pipes are at their end), or -1
 * after jq_task_fail when the run cannot start. */
int jq_exec_run_start(jq_task_t *t);

/* Stops t's run: the guard gets SIGTERM and kills the command's whole
 * tree; nothing touches t after this returns. The run frees itself when
 * its last handle is closed. */
void jq_exec_run_cancel(jq_task_t *t);

#endif
