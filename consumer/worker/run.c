/* A run's life cycle: allocation, payload zone, reuse, end. See run.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include "run.h"

/* Runs are reused: a run's calloc (1.4 KB, above glibc's per-thread
 * cache), its payload zone's chunk and their frees were ~9% of a worker's
 * CPU under noop jobs. Fields up to RUN_FIELDS_CAP bytes fit a reusable
 * run; up to SPARE_MAX wait for reuse, a batch's worth. Under ASan a
 * waiting run is poisoned, so a use after jq_run_free is still caught. */
#define RUN_FIELDS_CAP 512
#define SPARE_MAX 64

#ifdef __SANITIZE_ADDRESS__
#define SPARE_POISON(r) ASAN_POISON_MEMORY_REGION((r), sizeof(*(r)) + RUN_FIELDS_CAP)
#define SPARE_UNPOISON(r) ASAN_UNPOISON_MEMORY_REGION((r), sizeof(*(r)) + RUN_FIELDS_CAP)
#else
#define SPARE_POISON(r) ((void)(r))
#define SPARE_UNPOISON(r) ((void)(r))
#endif

/* ---- run lists ---- */

void jq_runlist_push(jq_runlist_t *l, jq_run_t *r) {
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

void jq_runlist_remove(jq_runlist_t *l, jq_run_t *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

/* ---- allocation and reuse ---- */

void jq_runs_init(jq_runs_t *rs, jq_admit_t *admit) {
    memset(rs, 0, sizeof(*rs));
    rs->admit = admit;
}

static void release(jq_run_t *r) {
    if (r->zone_first) msgpack_zone_destroy(&r->zone_mem);
    free(r);
}

void jq_runs_destroy(jq_runs_t *rs) {
    while (rs->spare) {
        jq_run_t *r = rs->spare;
        SPARE_UNPOISON(r);
        rs->spare = r->next;
        release(r);
    }
    rs->nspare = 0;
}

/* Takes back a run whose parts jq_run_free let go: kept for the next
 * entry (a run of the common size, up to a batch of them) or freed. */
static void recycle(jq_runs_t *rs, jq_run_t *r) {
    if (r->cap != RUN_FIELDS_CAP || rs->nspare >= SPARE_MAX) {
        release(r);
        return;
    }
    r->next = rs->spare;
    rs->spare = r;
    rs->nspare++;
    SPARE_POISON(r);
}

jq_run_t *jq_run_new(jq_runs_t *rs, size_t fsize) {
    jq_run_t *r = rs->spare;
    if (fsize > RUN_FIELDS_CAP || !r) {
        size_t cap = fsize > RUN_FIELDS_CAP ? fsize : RUN_FIELDS_CAP;
        r = calloc(1, sizeof(*r) + cap);
        if (!r) return NULL;
        if (cap == RUN_FIELDS_CAP) r->cap = cap;
        r->home = rs;
        return r;
    }
    SPARE_UNPOISON(r);
    rs->spare = r->next;
    rs->nspare--;
    msgpack_zone zone = r->zone_mem;
    const void *first = r->zone_first;
    memset(r, 0, sizeof(*r));
    r->zone_mem = zone;
    r->zone_first = first;
    r->cap = RUN_FIELDS_CAP;
    r->home = rs;
    return r;
}

/* ---- the payload zone ---- */

msgpack_zone *jq_run_zone(jq_run_t *r) {
    /* Strings and bins reference the entry's bytes; the zone holds only
     * the object tree, a few hundred bytes for a typical payload, so start
     * small rather than with msgpack-c's 8 KiB per job (it grows). */
    if (!r->zone_first) {
        if (!msgpack_zone_init(&r->zone_mem, 512)) return NULL;
        r->zone_first = r->zone_mem.chunk_list.head;
    }
    r->zone = &r->zone_mem;
    return r->zone;
}

void jq_run_drop_zone(jq_run_t *r) {
    if (r->zone == &r->zone_mem) {
        /* Only its first chunk (512 bytes): keep it for the run's next
         * job (runs are reused). A zone that grew is let go. */
        if (r->zone_mem.chunk_list.head == r->zone_first) {
            msgpack_zone_clear(&r->zone_mem);
        } else {
            msgpack_zone_destroy(&r->zone_mem);
            r->zone_first = NULL;
        }
    } else if (r->zone) {
        msgpack_zone_free(r->zone);
    }
    r->zone = NULL;
}

/* ---- the end ---- */

void jq_run_dead(jq_run_t *r, const char *why) {
    r->outcome = JQ_OUT_DEAD;
    snprintf(r->error, sizeof(r->error), "%s", why);
    r->finished_ms = jq_now_ms();
}

/* The handler is done with the decoded payload: free it (and for a done
 * job the entry's fields, which hold an inline payload) before the result
 * is copied into hiredis' output buffer, so that a large payload, its
 * result and that copy are never in memory at once. Not for an abandoned
 * cpu run, whose thread may still read it. */
void jq_run_drop_payload(jq_run_t *r) {
    if (r->keep || r->res_is_praw) return; /* the result is the payload */
    jq_run_drop_zone(r);
    r->payload.type = MSGPACK_OBJECT_NIL;
    r->praw = NULL;
    if (r->jbuf.data) msgpack_sbuffer_destroy(&r->jbuf);
    memset(&r->jbuf, 0, sizeof(r->jbuf));
    if (r->outcome == JQ_OUT_DONE && r->fields) {
        /* Only retries and dead letters copy the fields (outcome.c);
         * r->job's string views into them are not used past this point. */
        jq_reply_fields_release(r->fields);
        r->fields = NULL;
        memset(&r->job.type, 0, sizeof(r->job.type));
        memset(&r->job.payload, 0, sizeof(r->job.payload));
    }
}

void jq_run_free(jq_run_t *r) {
    if (!r) return;
    free(r->prog); /* no thread reports any more: its task has ended */
    r->prog = NULL;
    jq_admit_t *admit = r->home->admit;
    if (r->sent) jq_admit_sent(admit, r->q, r->kind, -1);
    if (r->finished) jq_admit_finished(admit, r->kind, -1);
    if (r->held) jq_admit_hold(admit, r->q, r->kind, -1);
    jq_run_drop_zone(r);
    if (r->jbuf.data) msgpack_sbuffer_destroy(&r->jbuf);
    msgpack_sbuffer_destroy(&r->task.result);
    jq_reply_fields_release(r->fields);
    recycle(r->home, r);
}
