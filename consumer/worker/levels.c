/* Priority levels within a queue. See levels.h. */

#include <stdlib.h>
#include <string.h>

#include "levels.h"
#include "log.h"

/* KEYS: the high, normal and low streams; ARGV: group, consumer, COUNT.
 * Each level gets what the ones above it left of COUNT, so the reply,
 * shaped as an XREADGROUP's ([stream, entries] per stream that gave
 * some), never holds more than COUNT entries. EVAL, not EVALSHA: Redis
 * keeps the compiled script by its hash, and the body is short; only
 * queues that use levels send it. */
static const char read_lua[] =
    "local out, left = {}, tonumber(ARGV[3])\n"
    "for i = 1, #KEYS do\n"
    "  if left <= 0 then break end\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', "
    "KEYS[i], '>')\n"
    "  if r then\n"
    "    out[#out + 1] = r[1]\n"
    "    left = left - #r[1][2]\n"
    "  end\n"
    "end\n"
    "return out\n";

/* How long a queue whose levels ran dry is left to the blocking read:
 * as long as that read blocks (fetch.c), so that a queue left out of it
 * (too few slots to split three ways) is polled no more often. */
#define DRY_MS 500

/* Appends queue q's high and low levels to the worker's queues, with
 * their groups (from id 0, as §6's). Returns 0, or -1 when there is no
 * room (JQ_QSLOTS covers every queue's levels: never). */
static int add_levels(jq_fetch_t *f, int q) {
    jq_queue_t *qs = f->env.queues, *base = &qs[q];
    int *n = f->b.nqueues;
    if (*n + 2 > JQ_QSLOTS) return -1;
    base->at[JQ_PRIO_NORMAL] = q;
    for (int p = 0; p < JQ_PRIO_N; p++) {
        if (p == JQ_PRIO_NORMAL) continue;
        int i = (*n)++;
        jq_queue_t *lv = &qs[i];
        memset(lv, 0, sizeof(*lv));
        lv->name = base->name;
        jq_key(lv->stream, sizeof(lv->stream), f->env.opt->prefix, base->name,
               jq_prio_stream((jq_prio_t)p));
        lv->paused = base->paused;
        lv->limited = base->limited; /* limit.c reads them with it */
        lv->leased = base->leased;
        lv->cancels = base->cancels;
        lv->is_level = 1;
        lv->level = (jq_prio_t)p;
        lv->base = q;
        base->at[p] = i;
        jq_admit_group(f->env.admit, i, q);
        /* On the write connection, before any read of the level: the
         * first is a script read there (dry_until is 0), so it comes
         * after. BUSYGROUP (another worker made it) is fine. */
        jq_fetch_create_group(f, f->env.conn, i);
    }
    base->levelled = 1;
    f->dry_until[q] = 0;
    return 0;
}

static void on_exists(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_fetch_qref_t *ref = priv;
    jq_fetch_t *f = ref->f;
    jq_queue_t *q = &f->env.queues[ref->q];
    (void)ac;
    if (!reply || reply->type != REDIS_REPLY_INTEGER || *f->env.stopping) return;
    if (reply->integer <= 0 || q->levelled) {
        if (q->levels_unknown) {
            q->levels_unknown = 0;
            jq_fetch_kick(f);
        }
        return;
    }
    q->levels_unknown = 0;
    if (add_levels(f, ref->q) != 0) return;
    jq_info("queue %s uses priority levels: reading high, normal, low", q->name);
    /* A blocking read in flight covers the normal stream only: cut it
     * short, and the next read is a script of all three. */
    jq_fetch_unblock(f);
    jq_fetch_kick(f);
}

void jq_levels_check(jq_fetch_t *f) {
    jq_args_t *a = &f->args;
    for (int i = 0; i < *f->env.nqueues; i++) {
        const jq_queue_t *q = &f->env.queues[i];
        if (q->is_level || q->levelled) continue;
        char hi[JQ_KEY_MAX], lo[JQ_KEY_MAX];
        jq_key(hi, sizeof(hi), f->env.opt->prefix, q->name, jq_prio_stream(JQ_PRIO_HIGH));
        jq_key(lo, sizeof(lo), f->env.opt->prefix, q->name, jq_prio_stream(JQ_PRIO_LOW));
        jq_args_reset(a);
        jq_args_str(a, "EXISTS");
        jq_args_str(a, hi);
        jq_args_str(a, lo);
        jq_rconn_args(f->env.conn, a, on_exists, &f->qref[i]);
    }
    jq_args_reset(a);
}

int jq_levels_scripted(const jq_fetch_t *f, int q, int64_t now_ms) {
    return f->env.queues[q].levelled && !f->lv_reading[q] && !f->in_block[q] &&
           now_ms >= f->dry_until[q];
}

typedef struct lvread {
    jq_fetch_t *f;
    int q;
    jq_admit_read_t res;
} lvread_t;

long long jq_levels_entries(const redisReply *reply) {
    long long n = 0;
    if (reply->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t s = 0; s < reply->elements; s++) {
        const redisReply *st = reply->element[s];
        if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 &&
            st->element[1]->type == REDIS_REPLY_ARRAY)
            n += (long long)st->element[1]->elements;
    }
    return n;
}

static void on_read(redisAsyncContext *ac, void *rp, void *priv) {
    lvread_t *p = priv;
    jq_fetch_t *f = p->f;
    redisReply *reply = rp;
    (void)ac;
    f->lv_reading[p->q] = 0;
    if (reply && !*f->env.stopping && f->env.opt->strict) {
        /* Strict order walks the queues itself (fetch.c): no dry time. */
        if (reply->type == REDIS_REPLY_ARRAY)
            jq_fetch_strict_got(f, p->q, p->res.count[p->q], jq_levels_entries(reply));
        jq_fetch_take(f, reply);
    } else if (reply && !*f->env.stopping) {
        /* Fewer than asked: every level is empty now. The blocking read
         * takes the queue over until something comes. */
        if (reply->type == REDIS_REPLY_ARRAY && jq_levels_entries(reply) < p->res.count[p->q]) {
            f->dry_until[p->q] = jq_now_ms() + DRY_MS;
            if (f->reading) jq_fetch_unblock(f); /* that read leaves the queue out */
        }
        jq_fetch_take(f, reply);
    }
    jq_fetch_piped_done(f, &p->res);
    free(p);
}

int jq_levels_read(jq_fetch_t *f, int q, const jq_admit_read_t *res) {
    const jq_queue_t *base = &f->env.queues[q];
    lvread_t *p = malloc(sizeof(*p));
    if (!p) return -1;
    p->f = f;
    p->q = q;
    p->res = *res;
    jq_args_t *a = &f->args;
    jq_args_reset(a);
    jq_args_str(a, "EVAL");
    jq_args_add(a, read_lua, sizeof(read_lua) - 1);
    jq_args_ll(a, JQ_PRIO_N);
    for (int l = 0; l < JQ_PRIO_N; l++) jq_args_str(a, f->env.queues[base->at[l]].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, f->env.worker_id);
    jq_args_ll(a, res->count[q]);
    int rc = jq_rconn_args(f->env.conn, a, on_read, p);
    jq_args_reset(a);
    if (rc != 0) {
        free(p);
        return -1;
    }
    f->lv_reading[q] = 1;
    f->pipe_reads++;
    return 0;
}
