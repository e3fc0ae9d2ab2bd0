/* Renewal and reclaim of pending entries. See reclaim.h. */

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reclaim.h"
#include "worker.h"

#define RECLAIM_EVERY_MS 200
#define MAX_IDS 1024
/* The master hands a dead worker's entries back stamped idle for
 * visibility * HANDBACK_IDLE_FACTOR + an hour (master.c); anything idle
 * that long is a dead worker's for sure. */
#define HANDBACK_IDLE_FACTOR 100

typedef struct claim {
    jq_worker_t *w;
    int q;
    int n;
    char ids[MAX_IDS][JQ_ENTRY_ID_MAX];
    long long deliveries[MAX_IDS];
} claim_t;

static long long deliveries_of(const claim_t *c, const char *id) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->ids[i], id) == 0) return c->deliveries[i];
    return 0;
}

static void on_claimed(redisAsyncContext *ac, void *rp, void *priv) {
    claim_t *c = priv;
    redisReply *reply = rp;
    jq_worker_t *w = c->w;
    w->reclaiming--;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *ent = reply->element[i];
            if (!jq_reply_entry_ok(ent)) continue;
            redisReply *fields = ent->element[1];
            if (fields->type != REDIS_REPLY_ARRAY) continue; /* deleted entry */
            ent->element[1] = NULL;
            /* XCLAIM counted this delivery too. */
            long long d = deliveries_of(c, ent->element[0]->str) + 1;
            jq_info("reclaimed entry %s of queue %s (delivery %lld)", ent->element[0]->str,
                    w->queues[c->q].name, d);
            jq_fetch_intake(w, c->q, ent->element[0]->str, fields, d);
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        jq_qhealth_key_error(w, c->q, reply->str);
        if (strncmp(reply->str, "WRONGTYPE", 9) != 0) jq_error("XCLAIM: %s", reply->str);
    }
    free(c);
    jq_fetch_kick(w);
}

static void on_pending(redisAsyncContext *ac, void *rp, void *priv) {
    claim_t *c = priv;
    redisReply *reply = rp;
    jq_worker_t *w = c->w;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || w->draining) {
        if (reply && reply->type == REDIS_REPLY_ERROR) jq_qhealth_key_error(w, c->q, reply->str);
        if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) != 0 &&
            strncmp(reply->str, "WRONGTYPE", 9) != 0)
            jq_error("XPENDING: %s", reply->str);
        w->reclaiming--;
        free(c);
        return;
    }
    const char *argv[8 + MAX_IDS];
    char idle[24];
    int argc = 0;
    snprintf(idle, sizeof(idle), "%lld", w->opt->visibility_ms);
    argv[argc++] = "XCLAIM";
    argv[argc++] = w->queues[c->q].stream;
    argv[argc++] = JQ_GROUP;
    argv[argc++] = w->id;
    argv[argc++] = idle;
    for (size_t i = 0; i < reply->elements && c->n < MAX_IDS; i++) {
        redisReply *e = reply->element[i];
        if (!jq_reply_pending_ok(e)) continue;
        snprintf(c->ids[c->n], JQ_ENTRY_ID_MAX, "%s", e->element[0]->str);
        c->deliveries[c->n] = e->element[3]->integer;
        argv[argc++] = c->ids[c->n];
        c->n++;
    }
    if (c->n == 0 || jq_rconn_cmdargv(&w->rwrite, on_claimed, c, argc, argv, NULL) != 0) {
        w->reclaiming--;
        free(c);
    }
}

static void reclaim(jq_worker_t *w, int q, long long min_idle, long long count) {
    claim_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->w = w;
    c->q = q;
    if (count > MAX_IDS) count = MAX_IDS;
    if (jq_rconn_cmd(&w->rwrite, on_pending, c, "XPENDING %s " JQ_GROUP " IDLE %lld - + %lld",
                     w->queues[q].stream, min_idle, count) == 0)
        w->reclaiming++;
    else
        free(c);
}

/* Renewal re-stamps only what this worker still owns: a plain XCLAIM to
 * itself would also take back an entry that another worker reclaimed while
 * this one was cut off (a long outage), and then both would run it. The
 * owner check and the XCLAIM (min-idle 0, JUSTID: no delivery counted) are
 * one script, so nothing can change hands in between. Returns how many of
 * the ids another consumer holds now. An id pending for nobody was acked:
 * an outcome of ours whose EXEC went out before this renewal, written,
 * not taken. */
static const char renew_lua[] =
    "local args = {KEYS[1], ARGV[1], ARGV[2], 0}\n"
    "local taken = 0\n"
    "for i = 3, #ARGV do\n"
    "  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then\n"
    "    args[#args + 1] = ARGV[i]\n"
    "  elseif #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) > 0 then\n"
    "    taken = taken + 1\n"
    "  end\n"
    "end\n"
    "if #args > 4 then\n"
    "  args[#args + 1] = 'JUSTID'\n"
    "  redis.call('XCLAIM', unpack(args))\n"
    "end\n"
    "return taken\n";

static void on_renewed(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    jq_queue_t *q = priv;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        jq_warn("queue %s: %lld running jobs were reclaimed by another consumer while this one "
                "was cut off; they may run twice", q->name, reply->integer);
    else if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) != 0 &&
             !strstr(reply->str, "WRONGTYPE"))
        jq_error("renewing held entries: %s", reply->str);
}

static void renew(jq_worker_t *w) {
    for (int q = 0; q < w->nqueues; q++) {
        const char *argv[8 + MAX_IDS];
        int argc = 0;
        argv[argc++] = "EVAL";
        argv[argc++] = renew_lua;
        argv[argc++] = "1";
        argv[argc++] = w->queues[q].stream;
        argv[argc++] = JQ_GROUP;
        argv[argc++] = w->id;
        jq_runlist_t *lists[] = {&w->running, &w->waiting};
        for (int l = 0; l < 2; l++)
            for (jq_run_t *r = lists[l]->head; r && argc < 6 + MAX_IDS; r = r->next)
                if (r->q == q) argv[argc++] = r->job.entry_id;
        /* And the finished ones whose outcome is not written yet: held
         * through a spell of refused writes they may wait longer than the
         * visibility timeout, and taken by another worker they would run,
         * and count, twice. */
        argc += jq_finish_ids(w, q, argv + argc, 6 + MAX_IDS - argc);
        if (argc == 6 || !jq_qhealth_ok(w, q)) continue;
        jq_rconn_cmdargv(&w->rwrite, on_renewed, &w->queues[q], argc, argv, NULL);
    }
}

void jq_reclaim_tick(jq_worker_t *w, int64_t now) {
    if (!w->rwrite.up) return;
    long long renew_every = w->opt->visibility_ms / 3;
    if (now - w->last_renew_ms >= renew_every) {
        w->last_renew_ms = now;
        renew(w);
    }
    if (w->draining || w->held || w->reclaiming || now - w->last_reclaim_ms < RECLAIM_EVERY_MS)
        return;
    w->last_reclaim_ms = now;
    for (int q = 0; q < w->nqueues; q++) {
        if (w->queues[q].paused || !jq_qhealth_ok(w, q)) continue;
        long long free_slots = jq_admit_free(&w->admit, q);
        long long min_idle = w->opt->visibility_ms;
        if (free_slots <= 0) {
            /* Full. Under load a worker's free slots are refilled by its
             * next read at once, so a dead worker's entries would wait
             * until the stream runs dry. What the master handed back
             * (stamped idle far past any visibility timeout, see master.c)
             * is taken even so, up to one more capacity (io plus cpu
             * slots, or the queue's limit): it waits behind this worker's
             * few queued runs instead of behind the whole stream. The XCLAIM's
             * min-idle keeps two workers from both taking one entry. */
            free_slots = w->admit.cap[JQ_KIND_IO] + w->admit.cap[JQ_KIND_CPU];
            if (w->admit.q[q].limit && free_slots > w->admit.q[q].limit) free_slots = w->admit.q[q].limit;
            min_idle = w->opt->visibility_ms * HANDBACK_IDLE_FACTOR;
        }
        reclaim(w, q, min_idle, free_slots);
    }
}

/* ---- after an outage: our own entries whose delivery we never saw ----
 *
 * A read whose reply was lost when Redis went away may still have given us
 * entries (with the append-only file they survive a crash): they sit in
 * our own pending list and nothing here runs them, and as they are ours
 * no reclaim takes them before the visibility timeout. So once back, list
 * our pending entries idle past OWN_IDLE_MS (what we still run was renewed
 * just before, and reads since the reconnect are younger than that), skip
 * the ones we hold, and claim the rest to ourselves, one by one with
 * RETRYCOUNT set to their count: the lost delivery never ran, so it must
 * not count towards "worker lost". */

#define OWN_IDLE_MS 100

typedef struct own {
    jq_worker_t *w;
    int q;
    long long deliveries;
} own_t;

static int holds(jq_worker_t *w, int q, const char *id) {
    jq_runlist_t *lists[] = {&w->running, &w->waiting, &w->abandoned};
    for (int l = 0; l < 3; l++)
        for (jq_run_t *r = lists[l]->head; r; r = r->next)
            if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return jq_finish_holds(w, q, id);
}

static void on_own_claimed(redisAsyncContext *ac, void *rp, void *priv) {
    own_t *o = priv;
    jq_worker_t *w = o->w;
    redisReply *reply = rp;
    w->reclaiming--;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 && !w->stopping) {
        redisReply *ent = reply->element[0];
        if (jq_reply_entry_ok(ent) && ent->element[1]->type == REDIS_REPLY_ARRAY && !holds(w, o->q, ent->element[0]->str)) {
            redisReply *fields = ent->element[1];
            ent->element[1] = NULL;
            jq_info("recovered entry %s of queue %s, delivered to us by a read whose reply was lost",
                    ent->element[0]->str, w->queues[o->q].name);
            jq_fetch_intake(w, o->q, ent->element[0]->str, fields, o->deliveries);
        }
    }
    free(o);
    jq_fetch_kick(w);
    jq_worker_maybe_exit(w);
}

static void on_own_pending(redisAsyncContext *ac, void *rp, void *priv) {
    own_t *q = priv;
    jq_worker_t *w = q->w;
    redisReply *reply = rp;
    w->reclaiming--;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (!jq_reply_pending_ok(e)) continue;
        const char *id = e->element[0]->str;
        if (holds(w, q->q, id)) continue;
        own_t *o = calloc(1, sizeof(*o));
        if (!o) break;
        o->w = w;
        o->q = q->q;
        o->deliveries = e->element[3]->integer;
        if (jq_rconn_cmd(&w->rwrite, on_own_claimed, o, "XCLAIM %s " JQ_GROUP " %s %d %s RETRYCOUNT %lld",
                         w->queues[q->q].stream, w->id, OWN_IDLE_MS, id, o->deliveries) == 0)
            w->reclaiming++;
        else
            free(o);
    }
    free(q);
    jq_worker_maybe_exit(w);
}

void jq_reclaim_own(jq_worker_t *w) {
    for (int q = 0; q < w->nqueues; q++) {
        own_t *o = calloc(1, sizeof(*o));
        if (!o) return;
        o->w = w;
        o->q = q;
        if (jq_rconn_cmd(&w->rwrite, on_own_pending, o, "XPENDING %s " JQ_GROUP " IDLE %d - + %d %s",
                         w->queues[q].stream, OWN_IDLE_MS, MAX_IDS, w->id) == 0)
            w->reclaiming++;
        else
            free(o);
    }
}
