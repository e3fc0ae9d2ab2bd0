#ifndef JQ_PROGRESS_H
#define JQ_PROGRESS_H

/* Progress of running jobs (docs/PROTOCOL.md §14): what a handler reports
 * with jq_task_progress() (a plugin, or an exec command's progress lines)
 * is written into the job's result hash while it runs: `state running`,
 * `progress` (0 to 1) and `progress_msg`, at most every
 * JQ_PROGRESS_EVERY_MS per job (the latest report wins), with the
 * result's TTL. The outcome's own write comes later on the same
 * connection, so the end is never overwritten by a late report.
 *
 * Pay only for what you use: a run holds no progress state until its
 * first report (r->prog, allocated then), and the writer looks at the
 * running runs only when a report came since it last looked (an atomic
 * flag). A report from a cpu thread takes the stage's mutex and copies
 * the message; the loop writes it at the next flags tick (50 ms). */

#include <pthread.h>
#include <stdint.h>

#include "args.h"
#include "run.h"
#include "stage.h"

#define JQ_PROGRESS_EVERY_MS 250

/* A run's last report; the stage's mutex guards it. */
struct jq_run_progress {
    double fraction;
    char msg[JQ_TASK_PROGRESS_MSG_LEN + 1];
    int dirty;          /* reported since the last write */
    int64_t written_ms; /* when it was last written */
};

typedef struct jq_progress {
    jq_stage_env_t env;
    jq_runlist_t *running; /* the worker's (borrowed) */
    pthread_mutex_t mu;
    int pending; /* a report came (atomic) */
    jq_args_t args;
} jq_progress_t;

void jq_progress_init(jq_progress_t *p, const jq_stage_env_t *env, jq_runlist_t *running);
void jq_progress_destroy(jq_progress_t *p);

/* Records r's report, from any thread (fraction clamped to 0..1, msg NULL
 * or cut to JQ_TASK_PROGRESS_MSG_LEN bytes). */
void jq_progress_report(jq_progress_t *p, jq_run_t *r, double fraction, const char *msg);

/* Loop thread: writes the reports due, if any came. */
void jq_progress_flush(jq_progress_t *p, int64_t now);

#endif
