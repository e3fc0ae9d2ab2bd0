/* Acked entries leave the stream by trimming. See trim.h. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "trim.h"

/* The later pass's trim: below the oldest pending entry, or with none
 * pending up to and including top (ARGV[2], the id right after it); it
 * answers with that oldest pending id. */
static const char trim_lua[] = "local p = redis.call('XPENDING', KEYS[1], ARGV[1])\n"
                               "if p[1] > 0 then\n"
                               "  redis.call('XTRIM', KEYS[1], 'MINID', p[2])\n"
                               "  return p[2]\n"
                               "end\n"
                               "redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2])\n"
                               "return false\n";

int jq_trim_id_cmp(const char *a, const char *b) {
    uint64_t ma, sa, mb, sb;
    jq_entry_id_parts(a, &ma, &sa);
    jq_entry_id_parts(b, &mb, &sb);
    if (ma != mb) return ma < mb ? -1 : 1;
    return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/* The id right after top ("ms-seq+1"): MINID keeps ids >= its argument,
 * so this one trims top too, with no XDEL after it (which cost Redis as
 * much as the trim of a whole batch: 11 against 15 us a call). */
static void next_id(const char *top, char out[JQ_ENTRY_ID_MAX]) {
    uint64_t ms, seq;
    jq_entry_id_parts(top, &ms, &seq);
    if (seq == UINT64_MAX && ms == UINT64_MAX) /* the last id there is: it stays */
        snprintf(out, JQ_ENTRY_ID_MAX, "%s", top);
    else if (seq == UINT64_MAX)
        snprintf(out, JQ_ENTRY_ID_MAX, "%llu-0", (unsigned long long)ms + 1);
    else
        snprintf(out, JQ_ENTRY_ID_MAX, "%llu-%llu", (unsigned long long)ms,
                 (unsigned long long)seq + 1);
}

static int send_script(jq_trim_t *t, int q, const char *top, redisCallbackFn *fn, void *priv) {
    char after[JQ_ENTRY_ID_MAX];
    next_id(top, after);
    jq_args_t *a = &t->args;
    jq_args_reset(a);
    jq_args_str(a, "EVAL");
    jq_args_str(a, trim_lua);
    jq_args_str(a, "1");
    jq_args_str(a, t->env.queues[q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, after);
    int rc = jq_rconn_args(t->env.conn, a, fn, priv);
    jq_args_reset(a);
    return rc;
}

/* An XTRIM lost with its connection is sent again by the next tick;
 * one refused (an error) too, after the tick's wait. Inside a MULTI its
 * answer is QUEUED: one whose EXEC never runs is covered by the trim of
 * the batch written again, whose answer moves the bound past it. */
static void on_trimmed(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    const redisReply *reply = rp;
    struct jq_trim_qref *ref = priv;
    if (!reply || reply->type == REDIS_REPLY_ERROR) ref->t->trimmed[ref->q][0] = '\0';
}

/* XTRIM up to q's bound, when it moved past the last one sent. */
static void send_trim(jq_trim_t *t, int q) {
    const char *bound = t->bound[q], *done = t->trimmed[q];
    if (!bound[0] || (done[0] && jq_trim_id_cmp(bound, done) <= 0)) return;
    jq_args_t *a = &t->args;
    jq_args_reset(a);
    jq_args_str(a, "XTRIM");
    jq_args_str(a, t->env.queues[q].stream);
    jq_args_str(a, "MINID");
    jq_args_str(a, bound);
    t->qref[q].t = t, t->qref[q].q = q;
    if (jq_rconn_args(t->env.conn, a, on_trimmed, &t->qref[q]) == 0)
        memcpy(t->trimmed[q], bound, JQ_ENTRY_ID_MAX);
    jq_args_reset(a);
}

void jq_trim_send(jq_trim_t *t, int q) {
    jq_args_t *a = &t->args;
    jq_args_reset(a);
    jq_args_str(a, "XPENDING");
    jq_args_str(a, t->env.queues[q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, "-");
    jq_args_str(a, "+");
    jq_args_str(a, "1");
    jq_rconn_args(t->env.conn, a, NULL, NULL);
    jq_args_reset(a);
    send_trim(t, q);
}

const char *jq_trim_answer(jq_trim_t *t, int q, const redisReply *pend, const char *top) {
    char at[JQ_ENTRY_ID_MAX];
    const char *min = NULL;
    if (!pend || pend->type != REDIS_REPLY_ARRAY) return NULL; /* an error: learn nothing */
    if (pend->elements == 0) {
        next_id(top, at); /* nothing pending: every entry up to top was acked */
    } else {
        const redisReply *e = pend->element[0];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= JQ_ENTRY_ID_MAX)
            return NULL;
        min = e->element[0]->str;
        snprintf(at, sizeof(at), "%s", min);
    }
    if (!t->bound[q][0] || jq_trim_id_cmp(at, t->bound[q]) > 0) memcpy(t->bound[q], at, sizeof(at));
    return min;
}

static void keep(jq_trim_ids_t *d, const char *id) {
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        void *ids = realloc(d->ids, (size_t)cap * sizeof(*d->ids));
        if (!ids) return; /* left to a later trim */
        d->ids = ids;
        d->cap = cap;
    }
    snprintf(d->ids[d->n++], JQ_ENTRY_ID_MAX, "%s", id);
}

void jq_trim_keep(jq_trim_t *t, int q, const char *id) { keep(&t->young[q], id); }

typedef struct pass {
    jq_trim_t *t;
    int q;
    jq_trim_ids_t ids; /* owned */
} pass_t;

/* The later pass's delete: of the kept ids still above the oldest pending
 * entry, only those no longer pending. A kept id is normally acked, but a
 * retry or dead letter acks its entry only once its id landed in its set
 * (outcome.c's move_lua): one whose ZADD failed is still pending, to run
 * again, and deleting it would leave its reclaim an entry without fields.
 * Nor the group's last-delivered-id (or above it, a group made again, §7):
 * an XDEL there while entries wait behind it makes Redis answer the group's
 * `lag` NULL until the next delivery, which a paused queue or busy workers
 * do not make, so `ready` and KEDA's lagCount scaler saw no backlog
 * (tests/integration/test_k8s.py). Those ids are answered, kept for a
 * later pass; an XTRIM takes them once nothing is pending below them. Ids
 * compare as numbers: Redis writes them without leading zeros, so a
 * shorter one is smaller. The XDELs take 1,000 ids each (a command in a
 * script takes at most about 8,000 arguments). KEYS[1] stream; ARGV[1]
 * group, then the ids. */
static const char xdel_lua[] =
    "local last\n"
    "for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "  if g[2] == ARGV[1] then\n"
    "    for i = 1, #g, 2 do\n"
    "      if g[i] == 'last-delivered-id' then last = g[i + 1] end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function lt(a, b) return #a < #b or (#a == #b and a < b) end\n"
    "local lm, ls = string.match(last or '0-0', '^(%d+)-(%d+)$')\n"
    "local ids, left = {}, {}\n"
    "for i = 2, #ARGV do\n"
    "  local m, s = string.match(ARGV[i], '^(%d+)-(%d+)$')\n"
    "  if not (m and (lt(m, lm) or (m == lm and lt(s, ls)))) then\n"
    "    left[#left + 1] = ARGV[i]\n"
    "  elseif #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) == 0 then\n"
    "    ids[#ids + 1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "for s = 1, #ids, 1000 do\n"
    "  redis.call('XDEL', KEYS[1], unpack(ids, s, math.min(s + 999, #ids)))\n"
    "end\n"
    "return left\n";

static void pass_done(pass_t *p) {
    jq_trim_t *t = p->t;
    free(p->ids.ids);
    free(p);
    t->passes--;
    t->env.maybe_exit(t->env.worker); /* an exit waits for the passes (jq_trim_all) */
}

/* The delete's answer: the ids it left (the group's last delivered) go
 * back to the young generation, for a pass a tick or two later. */
static void on_xdel(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    pass_t *p = priv;
    redisReply *reply = rp;
    jq_trim_t *t = p->t;
    if (reply && reply->type == REDIS_REPLY_ARRAY && !*t->env.stopping) {
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                keep(&t->young[p->q], reply->element[i]->str);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        jq_error("trimming %s: %s", t->env.queues[p->q].stream, reply->str);
    }
    pass_done(p);
}

static void on_pass(redisAsyncContext *ac, void *rp, void *priv) {
    pass_t *p = priv;
    redisReply *reply = rp;
    jq_trim_t *t = p->t;
    if (reply && reply->type == REDIS_REPLY_STRING && !*t->env.stopping) {
        jq_args_t *a = &t->args;
        jq_args_reset(a);
        jq_args_str(a, "EVAL");
        jq_args_str(a, xdel_lua);
        jq_args_str(a, "1");
        jq_args_str(a, t->env.queues[p->q].stream);
        jq_args_str(a, JQ_GROUP);
        for (int i = 0; i < p->ids.n; i++)
            if (jq_trim_id_cmp(p->ids.ids[i], reply->str) > 0) jq_args_str(a, p->ids.ids[i]);
        /* The pass stays counted until the delete answers. */
        int sent = a->argc > 5 && jq_rconn_args(t->env.conn, a, on_xdel, p) == 0;
        jq_args_reset(a);
        if (sent) return;
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        jq_error("trimming %s: %s", t->env.queues[p->q].stream, reply->str);
    }
    pass_done(p);
}

/* Hands d's ids to a pass (d is left empty). */
static void pass(jq_trim_t *t, int q, jq_trim_ids_t *d) {
    if (d->n == 0) return;
    pass_t *p = calloc(1, sizeof(*p));
    if (!p) {
        d->n = 0;
        return;
    }
    p->t = t;
    p->q = q;
    p->ids = *d;
    memset(d, 0, sizeof(*d));
    const char *top = p->ids.ids[0];
    for (int i = 1; i < p->ids.n; i++)
        if (jq_trim_id_cmp(p->ids.ids[i], top) > 0) top = p->ids.ids[i];
    if (send_script(t, q, top, on_pass, p) != 0) {
        free(p->ids.ids);
        free(p);
        return;
    }
    t->passes++;
}

void jq_trim_tick(jq_trim_t *t) {
    if (!t->env.conn->up) return;
    for (int q = 0; q < *t->env.nqueues; q++) {
        send_trim(t, q);
        pass(t, q, &t->old[q]);
        /* old is empty now: swap, so the young ones wait one more tick. */
        jq_trim_ids_t swap = t->old[q];
        t->old[q] = t->young[q];
        t->young[q] = swap;
    }
}

void jq_trim_all(jq_trim_t *t) {
    if (!t->env.conn->up) return;
    for (int q = 0; q < *t->env.nqueues; q++) {
        send_trim(t, q);
        pass(t, q, &t->old[q]);
        pass(t, q, &t->young[q]);
    }
}

void jq_trim_init(jq_trim_t *t, const jq_stage_env_t *env) {
    memset(t, 0, sizeof(*t));
    t->env = *env;
    jq_args_init(&t->args);
}

void jq_trim_destroy(jq_trim_t *t) {
    jq_args_destroy(&t->args);
    for (int q = 0; q < JQ_QSLOTS; q++) {
        free(t->young[q].ids);
        free(t->old[q].ids);
    }
}
