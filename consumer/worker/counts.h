#ifndef JQ_COUNTS_H
#define JQ_COUNTS_H

/* The counters a finish batch writes (PROTOCOL §7): done, failed, retried
 * dead and cancelled per queue, in its stats hash and its per-minute one, and the
 * wait and run latency histograms; summed over the batch's outcomes so
 * that a batch costs a few HINCRBYs, not a few per job. */

#include "finish.h"
#include "outcome.h"
#include "run.h"

#define JQ_COUNTS_BUCKETS 16

/* One queue's sums over a batch: zeroed, then jq_counts_add per outcome. */
typedef struct jq_counts {
    long long processed, failed, retried, dead, cancelled;
    long long wait[JQ_COUNTS_BUCKETS], run[JQ_COUNTS_BUCKETS];
    long long wait_n, run_n, wait_us, run_us;
} jq_counts_t;

/* Counts r's outcome, in state st, and its wait and run times. */
void jq_counts_add(jq_counts_t *sum, const jq_run_t *r, jq_job_state_t st);
/* Writes the sums of queue qn into the batch's open MULTI (finish.h). */
void jq_counts_write(jq_finish_t *fin, const char *qn, const jq_counts_t *sum);

#endif
