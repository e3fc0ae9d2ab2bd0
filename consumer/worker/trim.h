#ifndef JQ_TRIM_H
#define JQ_TRIM_H

/* How acked entries leave the stream (PROTOCOL §6): trimmed, not deleted
 * one by one.
 *
 * One XDEL per acked entry cost Redis about 2.6 us each (a seek into the
 * stream's radix tree and a walk of a listpack node). But one group reads
 * each stream, in id order, so every entry below the oldest one still
 * pending in the group was delivered and acked: XTRIM MINID drops them, a
 * whole listpack node at a time. So each outcome batch ends, after its
 * XACK, with one small script (jq_trim_lua) that trims below the oldest
 * pending entry and answers with it; with nothing pending it trims up to
 * and including the batch's newest id (MINID of the id right after it).
 *
 * Acked entries above the oldest pending one (a long job, or another
 * worker's batch still out) cannot be trimmed yet. The worker keeps their
 * ids and, one or two ticks later (100 to 200 ms), runs the script again
 * and XDELs those still above the oldest pending entry. So an acked entry
 * leaves the stream within about 200 ms, the stream holds what is pending
 * or not yet delivered and little else, and XLEN minus pending stays close
 * to the ready count (the group's lag, §7, is exact). A worker that exits
 * sends what it kept first; one killed leaves its kept ids to the next
 * trim that passes them. */

#include <hiredis/hiredis.h>

#include "args.h"
#include "job.h"
#include "options.h"

struct jq_worker;

typedef struct jq_trim_ids {
    char (*ids)[JQ_ENTRY_ID_MAX];
    int n, cap;
} jq_trim_ids_t;

/* The worker's kept ids, per queue, in two generations. */
typedef struct jq_trim {
    jq_args_t args;
    jq_trim_ids_t young[JQ_QUEUES_MAX], old[JQ_QUEUES_MAX];
} jq_trim_t;

extern const char jq_trim_lua[];

/* Compares two stream ids "ms-seq" as Redis does: <0, 0, >0. */
int jq_trim_id_cmp(const char *a, const char *b);

/* Sends the script for queue q's stream (inside the caller's MULTI, after
 * its XACK); top: the newest id of the batch. */
void jq_trim_send(struct jq_worker *w, int q, const char *top);

/* From the EXEC reply of that MULTI: the oldest pending id the script
 * answered, or NULL when it trimmed everything. Borrowed from reply. */
const char *jq_trim_answer(const redisReply *exec);

/* Keeps id (acked, above the oldest pending entry) for a later pass. */
void jq_trim_keep(struct jq_worker *w, int q, const char *id);

/* Once per tick: the ids kept a tick ago go (trimmed or deleted). */
void jq_trim_tick(struct jq_worker *w);
/* Before an exit: every kept id goes now. */
void jq_trim_all(struct jq_worker *w);
void jq_trim_destroy(jq_trim_t *t);

#endif
