#ifndef JQ_BATCH_H
#define JQ_BATCH_H

/* Batches (docs/PROTOCOL.md §12): the one script that every step on a
 * batch runs, shared by libjobq (add, seal) and the worker (a job of the
 * batch ended), so the text documented and the text sent are one.
 *
 * A batch id is "<queue>:<name>" (jq_batch_id_split, job.h): its keys
 * live under that queue's hash tag, beside the stream its callbacks go
 * to, so that "is it over?" and the callbacks' XADD are one atomic step
 * in one slot:
 *   <p>:{<queue>}:batch:<name>        HASH id queue total done dead
 *                                     cancelled sealed created_at
 *                                     [on_complete_type ..._payload]
 *                                     [on_success_type ..._payload] [fired]
 *   <p>:{<queue>}:batch:<name>:ended  SET of "<job's queue>/<job id>"
 *
 * EVAL jq_batch_lua 3 <batch hash> <ended set> <queue's stream> OP ...
 *   add N                  total += N (N < 0 takes jobs back); refused
 *                          when the batch is unknown, or sealed and N > 0
 *   end MEMBER STATE [TTL] a job ended (STATE done, dead or cancelled):
 *                          counted once per MEMBER, whatever the repeats
 *   seal [TTL]             no more jobs will come
 * Each answers {fired now (0/1), total, done, dead, cancelled}; once a
 * sealed batch's jobs have all ended, the callbacks are added to the
 * stream (exactly once: `fired` is set in the same step) and both keys
 * expire TTL seconds later (default 86400). */
extern const char jq_batch_lua[];

/* Seconds a batch is kept once its callbacks went. */
#define JQ_BATCH_KEEP_S 86400

#endif
