#ifndef JQ_TRIM_H
#define JQ_TRIM_H

/* How acked entries leave the stream (PROTOCOL §6): trimmed, not deleted
 * one by one.
 *
 * One XDEL per acked entry cost Redis about 2.6 us each (a seek into the
 * stream's radix tree and a walk of a listpack node). But one group reads
 * each stream, in id order, so every entry below the oldest one still
 * pending in the group was delivered and acked: XTRIM MINID drops them, a
 * whole listpack node at a time.
 *
 * Each outcome batch's MULTI asks, after its XACK, for the oldest entry
 * still pending (XPENDING - + 1: one seek into the group's PEL) and trims
 * up to what an earlier answer proved acked: the oldest pending id then,
 * or with nothing pending the id right after that batch's newest. An
 * earlier answer still holds, because an entry once delivered and acked
 * never becomes pending again (XCLAIM takes only pending entries, and new
 * entries get higher ids), so trimming one batch behind is as safe as
 * trimming in the same step. It is what a script that read XPENDING and
 * trimmed at once did until 2026-12 (20 us of Redis per batch, most of it
 * the script call, against 1 + 2 for the two native commands: a job
 * waited for alone waits for the whole EXEC). The one case it does not
 * cover: the group destroyed and made again from 0 by hand re-delivers
 * entries not yet trimmed, which a worker's older answer would trim while
 * they are pending again; a job done once, run again, could then lose its
 * entry if that run's worker died too. The tick trims what the last batch
 * proved, so an idle stream empties within a tick.
 *
 * Acked entries above the oldest pending one (a long job, or another
 * worker's batch still out) cannot be trimmed yet. The worker keeps their
 * ids and, one or two ticks later (100 to 200 ms), runs a script that
 * trims below the oldest pending entry and XDELs those still above it
 * and no longer pending themselves (a retry or dead letter whose move
 * failed was not acked: trim.c's xdel_lua), except the group's last
 * delivered entry, whose XDEL would make the group's lag NULL while jobs
 * wait behind it: that one is kept for a later pass. So an acked entry
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
    /* Per queue: every entry below bound is acked (the answers so far),
     * and an XTRIM up to trimmed was sent; "" when none yet. */
    char bound[JQ_QSLOTS][JQ_ENTRY_ID_MAX], trimmed[JQ_QSLOTS][JQ_ENTRY_ID_MAX];
    struct jq_trim_qref {
        struct jq_trim *t;
        int q;
    } qref[JQ_QSLOTS]; /* an XTRIM's callback argument */
    int passes;        /* sent, not answered */
} jq_trim_t;

/* Compares two stream ids "ms-seq" as Redis does: <0, 0, >0. */
int jq_trim_id_cmp(const char *a, const char *b);

/* Readies t with what it borrows (a copy of env). */
void jq_trim_init(jq_trim_t *t, const jq_stage_env_t *env);

/* Queues, inside the caller's MULTI after its XACK, the question for
 * queue q's oldest pending entry (its answer is the EXEC reply's element
 * at the position the caller noted before this call), then the trim up
 * to the bound earlier answers set, when it moved. */
void jq_trim_send(jq_trim_t *t, int q);

/* From that question's answer (pend: the EXEC reply's element; NULL when
 * the EXEC reply had none): the oldest pending id, borrowed from pend, or
 * NULL when nothing is pending or the answer is not one (an error). Moves
 * q's bound; top: the newest entry id of the batch. */
const char *jq_trim_answer(jq_trim_t *t, int q, const redisReply *pend, const char *top);

/* Keeps id (acked, above the oldest pending entry) for a later pass. */
void jq_trim_keep(jq_trim_t *t, int q, const char *id);

/* Once per tick: the trim up to q's bound when it moved, and the ids
 * kept a tick ago go (trimmed or deleted). Not
 * while Redis refuses our writes (jq_finish_held: the caller asks), when
 * the ids wait with the held outcomes; nor while the connection is down. */
void jq_trim_tick(jq_trim_t *t);
/* Before an exit: every kept id goes now (the same conditions). */
void jq_trim_all(jq_trim_t *t);
/* Passes sent whose answer has not come: a drain waits for them. */
static inline int jq_trim_busy(const jq_trim_t *t) { return t->passes; }
void jq_trim_destroy(jq_trim_t *t);

#endif
