#ifndef JQ_OUTCOME_H
#define JQ_OUTCOME_H

/* What an outcome means (finish.c's decisions, in outcome.c): the state
 * an attempt's end leaves its job in, and the writes that state makes.
 * finish.c, the batch writer, calls these inside the MULTI it opened and
 * sums the counters itself. */

#include "finish.h"
#include "run.h"

/* The states of PROTOCOL §3 an outcome writes. */
typedef enum {
    JQ_STATE_DONE,
    JQ_STATE_RETRYING,
    JQ_STATE_DEAD,
    JQ_STATE_CANCELLED, /* docs/PROTOCOL.md §11: acked like a done job */
} jq_job_state_t;

/* Writes r's outcome into the open MULTI: a retry's job hash and due
 * time (with backoff), a dead letter (each of those two acks its entry
 * itself, in the script that moves it: not in the batch's XACK), a done job's payload chunks gone,
 * an earlier result deleted, a chunked result; and adds the result to
 * the batch's script (jq_outcome_send_script). Returns the state. */
jq_job_state_t jq_outcome_write(jq_finish_t *fin, jq_run_t *r);
/* The cancel requests of the jobs of runs (a batch of queue q, chained by
 * bnext) that ended (done, dead, cancelled; not retrying: the request
 * stays for the retry) leave <p>:{q}:cancel, in one ZREM: sent only when
 * the queue has requests or a run was cancelled (docs/PROTOCOL.md §11). */
void jq_outcome_send_unrequest(jq_finish_t *fin, int q, const jq_run_t *runs);
/* Before a queue's MULTI: for each of runs (chained by bnext) that carries
 * `batch` and ended, the batch script's step (PROTOCOL §12). Nothing for
 * the others. */
void jq_outcome_batch_steps(jq_finish_t *fin, const jq_run_t *runs);
/* Before a queue's MULTI: the chunk list of each of runs' results over
 * --chunk-size (docs/PROTOCOL.md §3), with a short TTL that the MULTI
 * replaces by the result's. Nothing for the others. */
void jq_outcome_send_chunks(jq_finish_t *fin, jq_run_t *runs);
/* Sends the batch's script (in the MULTI) with the results that
 * jq_outcome_write gathered; none when none was; for a single one, the
 * same writes as native commands (HSET, EXPIRE, and LPUSH, EXPIRE of its
 * notify list), which Redis runs sooner (outcome.c, send_native). */
void jq_outcome_send_script(jq_finish_t *fin);

#endif
