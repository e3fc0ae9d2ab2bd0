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
 * and XDELs those still above the oldest pending entry and no longer
 * pending themselves (a retry or dead letter whose move failed was not
 * acked: trim.c's xdel_lua), except the group's last delivered entry,
 * whose XDEL would make the group's lag NULL while jobs wait behind it:
 * that one is kept for a later pass. So an acked entry
 * leaves the stream within about 200 ms, the stream holds what is pending
 * or not yet delivered and little else, and XLEN minus pending stays close
 * to the ready count (the group's lag, §7, is exact). A worker that exits
 * sends what it kept first; one killed leaves its kept ids to the next
 * trim that passes them. */

#include <hiredis/hiredis.h>

#include "args.h"
#include "job.h"
#include "stage.h"

typedef struct jq_trim_ids {
    char (*ids)[JQ_ENTRY_ID_MAX];
    int n, cap;
} jq_trim_ids_t;

/* The stage's state (w->trim): the kept ids, per queue, in two
 * generations, and the passes whose answer a drain waits for. */
typedef struct jq_trim {
    jq_stage_env_t env; /* borrowed: connection, queues, exit */
    jq_args_t args;
    jq_trim_ids_t young[JQ_QSLOTS], old[JQ_QSLOTS];
    int passes; /* sent, not answered */
} jq_trim_t;

extern const char jq_trim_lua[];

/* Compares two stream ids "ms-seq" as Redis does: <0, 0, >0. */
int jq_trim_id_cmp(const char *a, const char *b);

/* Readies t with what it borrows (a copy of env). */
void jq_trim_init(jq_trim_t *t, const jq_stage_env_t *env);

/* Sends the script for queue q's stream (inside the caller's MULTI, after
 * its XACK); top: the newest id of the batch. */
void jq_trim_send(jq_trim_t *t, int q, const char *top);

/* From the EXEC reply of that MULTI: the oldest pending id the script
 * answered, or NULL when it trimmed everything. Borrowed from reply. */
const char *jq_trim_answer(const redisReply *exec);

/* Keeps id (acked, above the oldest pending entry) for a later pass. */
void jq_trim_keep(jq_trim_t *t, int q, const char *id);

/* Once per tick: the ids kept a tick ago go (trimmed or deleted). Not
 * while Redis refuses our writes (jq_finish_held: the caller asks), when
 * the ids wait with the held outcomes; nor while the connection is down. */
void jq_trim_tick(jq_trim_t *t);
/* Before an exit: every kept id goes now (the same conditions). */
void jq_trim_all(jq_trim_t *t);
/* Passes sent whose answer has not come: a drain waits for them. */
static inline int jq_trim_busy(const jq_trim_t *t) { return t->passes; }
void jq_trim_destroy(jq_trim_t *t);

#endif
