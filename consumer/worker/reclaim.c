/* Renewal and reclaim of pending entries. See reclaim.h. */

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reclaim.h"

#define RECLAIM_EVERY_MS 200
#define MAX_IDS 1024
/* The master hands a dead worker's entries back stamped idle for
 * visibility * HANDBACK_IDLE_FACTOR + an hour (master.c); anything idle
 * that long is a dead worker's for sure. */
#define HANDBACK_IDLE_FACTOR 100

typedef struct claim {
    jq_reclaim_t *rc;
    int q;
    int n;
    char ids[MAX_IDS][JQ_ENTRY_ID_MAX];
    long long deliveries[MAX_IDS];
    char handed[MAX_IDS]; /* handed back for its type (types.h) */
    int only_handed;      /* a limited queue: its idle entries are claimed
                             with permits (limit.h); only those handed
                             back for their type are left to us */
} claim_t;

static int index_of(const claim_t *c, const char *id) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->ids[i], id) == 0) return i;
    return -1;
}

static void on_claimed(redisAsyncContext *ac, void *rp, void *priv) {
    claim_t *c = priv;
    redisReply *reply = rp;
    jq_reclaim_t *rc = c->rc;
    rc->inflight--;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *ent = reply->element[i];
            if (!jq_fetch_entry_ok(ent)) continue;
            redisReply *fields = ent->element[1];
            if (fields->type != REDIS_REPLY_ARRAY) continue; /* deleted entry */
            /* XCLAIM counted this delivery too. */
            int k = index_of(c, ent->element[0]->str);
            long long d = (k < 0 ? 0 : c->deliveries[k]) + 1;
            if (k < 0 || !c->handed[k]) /* a handed-back entry is no news */
                jq_info("reclaimed entry %s of queue %s (delivery %lld)", ent->element[0]->str,
                        rc->env.queues[c->q].name, d);
            jq_fetch_intake(rc->b.fetch, c->q, ent->element[0]->str, fields, d);
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        rc->b.key_error(rc->env.worker, c->q, reply->str);
        if (strncmp(reply->str, "WRONGTYPE", 9) != 0) jq_error("XCLAIM: %s", reply->str);
    }
    free(c);
    jq_fetch_kick(rc->b.fetch);
}

static void on_pending(redisAsyncContext *ac, void *rp, void *priv) {
    claim_t *c = priv;
    redisReply *reply = rp;
    jq_reclaim_t *rc = c->rc;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || *rc->b.draining) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            rc->b.key_error(rc->env.worker, c->q, reply->str);
        if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) != 0 &&
            strncmp(reply->str, "WRONGTYPE", 9) != 0)
            jq_error("XPENDING: %s", reply->str);
        rc->inflight--;
        free(c);
        return;
    }
    jq_args_t *a = &rc->args;
    jq_args_reset(a);
    jq_args_str(a, "XCLAIM");
    jq_args_str(a, rc->env.queues[c->q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, rc->env.worker_id);
    jq_args_ll(a, rc->env.opt->visibility_ms);
    int64_t now = jq_now_ms();
    for (size_t i = 0; i < reply->elements && c->n < MAX_IDS; i++) {
        redisReply *e = reply->element[i];
        if (!jq_fetch_pending_ok(e)) continue;
        /* Handed back for a worker that handles its type (types.h). */
        const redisReply *owner = e->element[1];
        int handed = owner->type == REDIS_REPLY_STRING &&
                     strncmp(owner->str, JQ_TYPES_CONSUMER, sizeof(JQ_TYPES_CONSUMER) - 1) == 0;
        if (c->only_handed && !handed) continue;
        if (handed &&
            jq_types_leave(rc->b.types, c->q, e->element[0]->str, owner->str, owner->len, now))
            continue;
        c->handed[c->n] = (char)handed;
        snprintf(c->ids[c->n], JQ_ENTRY_ID_MAX, "%s", e->element[0]->str);
        c->deliveries[c->n] = e->element[3]->integer;
        jq_args_str(a, c->ids[c->n]);
        c->n++;
    }
    int sent = c->n == 0 ? -1 : jq_rconn_args(rc->env.conn, a, on_claimed, c);
    jq_args_reset(a);
    if (sent != 0) {
        rc->inflight--;
        free(c);
    }
}

/* XPENDING of queue q's stream: entries idle for min_idle ms or more, at
 * most count, only consumer's when it is not NULL. */
static int send_pending(jq_reclaim_t *rc, int q, long long min_idle, long long count,
                        const char *consumer, redisCallbackFn *fn, void *priv) {
    jq_args_t *a = &rc->args;
    jq_args_reset(a);
    jq_args_str(a, "XPENDING");
    jq_args_str(a, rc->env.queues[q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, "IDLE");
    jq_args_ll(a, min_idle);
    jq_args_str(a, "-");
    jq_args_str(a, "+");
    jq_args_ll(a, count);
    if (consumer) jq_args_str(a, consumer);
    int sent = jq_rconn_args(rc->env.conn, a, fn, priv);
    jq_args_reset(a);
    if (sent == 0) rc->inflight++;
    return sent;
}

static void reclaim(jq_reclaim_t *rc, int q, long long min_idle, long long count) {
    claim_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->rc = rc;
    c->q = q;
    c->only_handed = rc->env.queues[q].limited != 0;
    if (count > MAX_IDS) count = MAX_IDS;
    /* The XCLAIM brings whole entries: as many as one read may (worker.h). */
    if (rc->env.admit->read_max && count > rc->env.admit->read_max) count = rc->env.admit->read_max;
    if (send_pending(rc, q, min_idle, count, NULL, on_pending, c) != 0) free(c);
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
                "was cut off; they may run twice",
                q->name, reply->integer);
    else if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) != 0 &&
             !strstr(reply->str, "WRONGTYPE"))
        jq_error("renewing held entries: %s", reply->str);
}

/* A concurrency-limited queue's leases (limit.h) are renewed with the
 * entries, from Redis's clock: the ids are those of the renewal just
 * sent (a's arguments from head on). XX: a lease that expired, or was
 * released, is not made again. */
static const char lease_lua[] =
    "local t = redis.call('TIME')\n"
    "local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
    "1000) + tonumber(ARGV[1])\n"
    "for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[i]) "
    "end\n"
    "return 0\n";

static void renew_leases(jq_reclaim_t *rc, int q, int head) {
    jq_args_t ids;
    jq_args_init(&ids);
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), rc->env.opt->prefix, rc->env.queues[q].name, "leases");
    jq_args_str(&ids, "EVAL");
    jq_args_add(&ids, lease_lua, sizeof(lease_lua) - 1);
    jq_args_str(&ids, "1");
    jq_args_str(&ids, key);
    jq_args_ll(&ids, rc->env.opt->visibility_ms);
    for (int i = head; i < rc->args.argc; i++)
        jq_args_add(&ids, rc->args.argv[i], rc->args.lens[i]);
    jq_rconn_args(rc->env.conn, &ids, NULL, NULL);
    jq_args_destroy(&ids);
}

static void renew(jq_reclaim_t *rc) {
    jq_args_t *a = &rc->args;
    for (int q = 0; q < *rc->env.nqueues; q++) {
        if (!jq_queue_ok(&rc->env.queues[q])) continue;
        jq_args_reset(a);
        jq_args_str(a, "EVAL");
        jq_args_str(a, renew_lua);
        jq_args_str(a, "1");
        jq_args_str(a, rc->env.queues[q].stream);
        jq_args_str(a, JQ_GROUP);
        jq_args_str(a, rc->env.worker_id);
        int head = a->argc, n = 0;
        const jq_runlist_t *lists[] = {rc->b.running, rc->b.waiting};
        for (int l = 0; l < 2; l++)
            for (jq_run_t *r = lists[l]->head; r && n < MAX_IDS; r = r->next)
                if (r->q == q) {
                    jq_args_str(a, r->job.entry_id);
                    n++;
                }
        /* And the finished ones whose outcome is not written yet: held
         * through a spell of refused writes they may wait longer than the
         * visibility timeout, and taken by another worker they would run,
         * and count, twice. */
        const char *fin[MAX_IDS];
        int nfin = jq_finish_ids(rc->b.finish, q, fin, MAX_IDS - n);
        for (int i = 0; i < nfin; i++) jq_args_str(a, fin[i]);
        if (a->argc > head) {
            jq_rconn_args(rc->env.conn, a, on_renewed, &rc->env.queues[q]);
            if (rc->env.queues[q].leased) renew_leases(rc, q, head);
        }
    }
    jq_args_reset(a);
}

void jq_reclaim_init(jq_reclaim_t *rc, const jq_stage_env_t *env, const jq_reclaim_borrow_t *b) {
    memset(rc, 0, sizeof(*rc));
    rc->env = *env;
    rc->b = *b;
    jq_args_init(&rc->args);
}

void jq_reclaim_destroy(jq_reclaim_t *rc) { jq_args_destroy(&rc->args); }

int jq_reclaim_busy(const jq_reclaim_t *rc) { return rc->inflight > 0; }

void jq_reclaim_tick(jq_reclaim_t *rc, int64_t now) {
    if (!rc->env.conn->up) return;
    if (rc->own_due_ms != 0 && now >= rc->own_due_ms) {
        rc->own_due_ms = 0;
        jq_reclaim_own(rc);
    }
    long long renew_every = rc->env.opt->visibility_ms / 3;
    if (now - rc->last_renew_ms >= renew_every) {
        rc->last_renew_ms = now;
        renew(rc);
    }
    if (*rc->b.draining || jq_finish_held(rc->b.finish) || rc->inflight ||
        now - rc->last_reclaim_ms < RECLAIM_EVERY_MS)
        return;
    rc->last_reclaim_ms = now;
    for (int q = 0; q < *rc->env.nqueues; q++) {
        if (rc->env.queues[q].paused || !jq_queue_ok(&rc->env.queues[q])) continue;
        long long free_slots = jq_admit_free(rc->env.admit, q);
        /* A queue's priority levels (levels.h) are three streams claimed
         * in one tick from the queue's one count of free slots: a third
         * each, so that together they claim no more than it. */
        const jq_queue_t *bq = &rc->env.queues[jq_queue_base(rc->env.queues, q)];
        if (bq->levelled && free_slots > 0)
            free_slots = free_slots / JQ_PRIO_N > 0 ? free_slots / JQ_PRIO_N : 1;
        long long min_idle = rc->env.opt->visibility_ms;
        if (free_slots <= 0) {
            /* Full. Under load a worker's free slots are refilled by its
             * next read at once, so a dead worker's entries would wait
             * until the stream runs dry. What the master handed back
             * (stamped idle far past any visibility timeout, see master.c)
             * is taken even so, up to one more capacity (io plus cpu
             * slots, or the queue's limit): it waits behind this worker's
             * few queued runs instead of behind the whole stream. The XCLAIM's
             * min-idle keeps two workers from both taking one entry. */
            free_slots = jq_admit_capacity(rc->env.admit, q);
            min_idle = rc->env.opt->visibility_ms * HANDBACK_IDLE_FACTOR;
        }
        reclaim(rc, q, min_idle, free_slots);
    }
}

void jq_reclaim_now(jq_reclaim_t *rc, int64_t now) {
    if (rc->last_reclaim_ms > now) return; /* paused after an outage */
    rc->last_reclaim_ms = 0;
    jq_reclaim_tick(rc, now);
}

void jq_reclaim_reconnected(jq_reclaim_t *rc, int64_t now, int64_t pause_ms) {
    rc->last_renew_ms = 0;
    rc->last_reclaim_ms = now + pause_ms;
    jq_reclaim_tick(rc, now);
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
    jq_reclaim_t *rc;
    int q;
    long long deliveries;
} own_t;

static int holds(const jq_reclaim_t *rc, int q, const char *id) {
    const jq_runlist_t *lists[] = {rc->b.running, rc->b.waiting, rc->b.abandoned};
    for (int l = 0; l < 3; l++)
        for (jq_run_t *r = lists[l]->head; r; r = r->next)
            if (r->q == q && strcmp(r->job.entry_id, id) == 0) return 1;
    return jq_finish_holds(rc->b.finish, q, id);
}

static void on_own_claimed(redisAsyncContext *ac, void *rp, void *priv) {
    own_t *o = priv;
    jq_reclaim_t *rc = o->rc;
    redisReply *reply = rp;
    rc->inflight--;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 && !*rc->env.stopping) {
        redisReply *ent = reply->element[0];
        if (jq_fetch_entry_ok(ent) && ent->element[1]->type == REDIS_REPLY_ARRAY &&
            !holds(rc, o->q, ent->element[0]->str)) {
            redisReply *fields = ent->element[1];
            jq_info(
                "recovered entry %s of queue %s, delivered to us by a read whose reply was lost",
                ent->element[0]->str, rc->env.queues[o->q].name);
            jq_fetch_intake(rc->b.fetch, o->q, ent->element[0]->str, fields, o->deliveries);
        }
    }
    free(o);
    jq_fetch_kick(rc->b.fetch);
    rc->env.maybe_exit(rc->env.worker);
}

static void on_own_pending(redisAsyncContext *ac, void *rp, void *priv) {
    own_t *q = priv;
    jq_reclaim_t *rc = q->rc;
    redisReply *reply = rp;
    rc->inflight--;
    jq_args_t *a = &rc->args;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (!jq_fetch_pending_ok(e)) continue;
        const char *id = e->element[0]->str;
        if (holds(rc, q->q, id)) continue;
        own_t *o = calloc(1, sizeof(*o));
        if (!o) break;
        o->rc = rc;
        o->q = q->q;
        o->deliveries = e->element[3]->integer;
        jq_args_reset(a);
        jq_args_str(a, "XCLAIM");
        jq_args_str(a, rc->env.queues[q->q].stream);
        jq_args_str(a, JQ_GROUP);
        jq_args_str(a, rc->env.worker_id);
        jq_args_ll(a, OWN_IDLE_MS);
        jq_args_str(a, id);
        jq_args_str(a, "RETRYCOUNT");
        jq_args_ll(a, o->deliveries);
        if (jq_rconn_args(rc->env.conn, a, on_own_claimed, o) == 0)
            rc->inflight++;
        else
            free(o);
    }
    jq_args_reset(a);
    free(q);
    rc->env.maybe_exit(rc->env.worker);
}

void jq_reclaim_own_soon(jq_reclaim_t *rc, int64_t now) { rc->own_due_ms = now + 2 * OWN_IDLE_MS; }

void jq_reclaim_own(jq_reclaim_t *rc) {
    for (int q = 0; q < *rc->env.nqueues; q++) {
        own_t *o = calloc(1, sizeof(*o));
        if (!o) return;
        o->rc = rc;
        o->q = q;
        if (send_pending(rc, q, OWN_IDLE_MS, MAX_IDS, rc->env.worker_id, on_own_pending, o) != 0)
            free(o);
    }
}
