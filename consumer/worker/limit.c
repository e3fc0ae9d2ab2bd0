/* Rate and concurrency limits: the limit hashes polled, limited queues
 * read with permits. See limit.h. */

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "limit.h"
#include "log.h"
#include "types.h"

/* The permits and the read, in one step. The bucket holds at most 200 ms
 * of tokens (at least 1, at most the rate): a rate is smooth, one job
 * every period/rate, and over any window of W ms at most
 * W * rate / period + burst jobs start (2% over at 10 s). Only the tokens
 * and leases of what it brings are taken: granted permits are never left
 * unused. A concurrency slot is a lease: the entry id in the zset, scored
 * with its expiry (Redis's clock + the visibility timeout), expired ones
 * dropped before counting.
 *
 * KEYS: limit hash, leases, bucket, backoff, stream, and for a queue with
 * priority levels (levels.h) its high and low streams: idle entries are
 * claimed, then new ones read, high first, then normal, then low, and
 * each entry says its stream.
 * ARGV: group, consumer, want, visibility_ms, the prefix of the consumers
 * that hold entries handed back for their type (not claimed here).
 * Returns {got, wait_ms, {{id, fields, deliveries[, stream]}...}, allowed,
 * leases}:
 * wait_ms > 0 the next token's time, -1 no free slot, 0 ask when free; or
 * {0, pttl} while the backoff key lives. */
const char jq_limit_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local slow = redis.call('PTTL', KEYS[4])\n"
    "if slow > 0 then return {0, slow} end\n"
    "local want, vis = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local l = redis.call('HMGET', KEYS[1], 'rate', 'period_ms', 'concurrency')\n"
    "local rate, per, conc = tonumber(l[1]), tonumber(l[2]), tonumber(l[3])\n"
    "local wait, tokens = 0, nil\n"
    "if rate and per and rate >= 1 and per >= 1 then\n"
    "  local burst = math.max(1, math.min(rate, math.floor(rate * 200 / per)))\n"
    "  local b = redis.call('HMGET', KEYS[3], 'tokens', 'at')\n"
    "  tokens = tonumber(b[1])\n"
    "  local at = tonumber(b[2])\n"
    "  if tokens and at then\n"
    "    tokens = math.min(burst, tokens + math.max(0, now - at) * rate / per)\n"
    "  else\n"
    "    tokens = burst\n"
    "  end\n"
    "  if math.floor(tokens) < want then want = math.floor(tokens) end\n"
    "else\n"
    "  rate = nil\n"
    "end\n"
    "local nl = 0\n"
    "if conc and conc >= 1 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
    "  nl = redis.call('ZCARD', KEYS[2])\n"
    "  if conc - nl < want then want = conc - nl end\n"
    "  if want <= 0 then wait = -1 end\n"
    "else\n"
    "  conc = nil\n"
    "end\n"
    "if want < 0 then want = 0 end\n"
    "local out = {}\n"
    "local streams = {KEYS[5]}\n"
    "if #KEYS >= 7 then streams = {KEYS[6], KEYS[5], KEYS[7]} end\n"
    "local function add(e, d, s)\n"
    "  if #KEYS >= 7 then out[#out + 1] = {e[1], e[2], d, s} else out[#out + 1] = {e[1], e[2], d} "
    "end\n"
    "end\n"
    "for _, s in ipairs(streams) do\n"
    "  if #out >= want then break end\n"
    "  local ids, dl = {}, {}\n"
    "  for _, p in ipairs(redis.call('XPENDING', s, ARGV[1], 'IDLE', vis, '-', '+', want - #out)) "
    "do\n"
    "    if string.sub(p[2], 1, #ARGV[5]) ~= ARGV[5] then\n"
    "      ids[#ids + 1] = p[1]\n"
    "      dl[p[1]] = p[4]\n"
    "    end\n"
    "  end\n"
    "  if #ids > 0 then\n"
    "    for _, e in ipairs(redis.call('XCLAIM', s, ARGV[1], ARGV[2], vis, unpack(ids))) do\n"
    "      if e and e[2] then add(e, dl[e[1]] + 1, s) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for _, s in ipairs(streams) do\n"
    "  if #out >= want then break end\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want - #out, "
    "'STREAMS', s, '>')\n"
    "  if r and r[1] then\n"
    "    for _, e in ipairs(r[1][2]) do\n"
    "      if e[2] then add(e, 1, s) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if rate then\n"
    "  tokens = tokens - #out\n"
    "  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'at', tostring(now))\n"
    "  redis.call('PEXPIRE', KEYS[3], per * 2 + 1000)\n"
    "  if tokens < 1 then wait = math.max(wait, math.ceil((1 - tokens) * per / rate)) end\n"
    "end\n"
    "if conc then\n"
    "  for _, e in ipairs(out) do redis.call('ZADD', KEYS[2], now + vis, e[1]) end\n"
    "  nl = nl + #out\n"
    "end\n"
    "return {#out, wait, out, want, nl}\n";

void jq_limit_init(jq_limit_t *l, const jq_stage_env_t *env, const jq_limit_borrow_t *b) {
    memset(l, 0, sizeof(*l));
    l->env = *env;
    l->b = *b;
    for (int i = 0; i < JQ_QSLOTS; i++) {
        l->q[i].l = l;
        l->q[i].q = i;
    }
    jq_args_init(&l->args);
}

void jq_limit_destroy(jq_limit_t *l) { jq_args_destroy(&l->args); }

int jq_limit_busy(const jq_limit_t *l) {
    for (int i = 0; i < *l->env.nqueues; i++)
        if (l->q[i].asking) return 1;
    return 0;
}

static void key(const jq_limit_t *l, int q, const char *what, char *buf) {
    jq_key(buf, JQ_KEY_MAX, l->env.opt->prefix, l->env.queues[q].name, what);
}

/* Sets queue q's flags from what is known of its limit. A queue that
 * becomes limited is cut out of the blocking read (which may cover it);
 * one that is no longer limited is read the ordinary way again. */
static void update(jq_limit_queue_t *lq, int64_t now) {
    jq_limit_t *l = lq->l;
    jq_queue_t *q = &l->env.queues[lq->q];
    if (!lq->known) return;
    int was = q->limited;
    int limited = lq->rate > 0 || lq->concurrency > 0 || lq->slow_until_ms > now;
    q->leased = lq->concurrency > 0;
    /* Its levels' entries (levels.h) are held, reclaimed and released as
     * the queue's. */
    if (q->levelled)
        for (int p = 0; p < JQ_PRIO_N; p++) {
            l->env.queues[q->at[p]].leased = q->leased;
            l->env.queues[q->at[p]].limited = limited;
        }
    if (limited == was) return;
    q->limited = limited;
    l->nlimited += limited - (was == 1);
    if (was >= 0 || limited)
        jq_info("queue %s: %s", q->name,
                !limited                                                   ? "no limit"
                : lq->slow_until_ms > now && !lq->rate && !lq->concurrency ? "slowed down"
                                                                           : "limited");
    if (limited)
        jq_fetch_unblock(l->b.fetch);
    else
        l->env.kick(l->env.worker);
}

/* A field's value as a positive integer, or 0 (absent); a bad one is
 * logged once per queue and taken as no limit. */
static long long field_ll(jq_limit_queue_t *lq, const redisReply *v, const char *name) {
    char buf[32];
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len >= sizeof(buf)) return 0;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    char *end;
    long long n = strtoll(buf, &end, 10);
    if (*end || n < 1) {
        if (!lq->warned)
            jq_warn("queue %s: limit field %s '%s' is not a positive integer: ignored",
                    lq->l->env.queues[lq->q].name, name, buf);
        lq->warned = 1;
        return 0;
    }
    return n;
}

static void on_limit_hash(redisAsyncContext *ac, void *rp, void *priv) {
    jq_limit_queue_t *lq = priv;
    redisReply *reply = rp;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR && !lq->warned) {
            jq_warn("queue %s: limit: %s", lq->l->env.queues[lq->q].name, reply->str);
            lq->warned = 1;
        }
        return;
    }
    long long rate = 0, period = 0, conc = 0;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) continue;
        if (!strcmp(k->str, "rate")) rate = field_ll(lq, v, "rate");
        if (!strcmp(k->str, "period_ms")) period = field_ll(lq, v, "period_ms");
        if (!strcmp(k->str, "concurrency")) conc = field_ll(lq, v, "concurrency");
    }
    if (!rate || !period) rate = period = 0;
    if (rate != lq->rate || period != lq->period_ms || conc != lq->concurrency) lq->next_ms = 0;
    lq->rate = rate;
    lq->period_ms = period;
    lq->concurrency = conc;
    lq->known = 1;
    update(lq, jq_now_ms());
}

static void on_backoff(redisAsyncContext *ac, void *rp, void *priv) {
    jq_limit_queue_t *lq = priv;
    redisReply *reply = rp;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return;
    int64_t now = jq_now_ms();
    if (reply->integer > 0 && now + reply->integer > lq->slow_until_ms)
        lq->slow_until_ms = now + reply->integer;
    update(lq, now);
}

/* The limit hashes (hashes too) and the backoff keys (PTTL only). */
static void poll_limits(jq_limit_t *l, int hashes) {
    jq_args_t *a = &l->args;
    for (int i = 0; i < *l->env.nqueues; i++) {
        if (l->env.queues[i].is_level) continue; /* its queue's limit */
        char k[JQ_KEY_MAX];
        key(l, i, "limit", k);
        jq_args_reset(a);
        jq_args_str(a, "HGETALL");
        jq_args_str(a, k);
        if (hashes) jq_rconn_args(l->env.conn, a, on_limit_hash, &l->q[i]);
        key(l, i, "backoff", k);
        jq_args_reset(a);
        jq_args_str(a, "PTTL");
        jq_args_str(a, k);
        jq_rconn_args(l->env.conn, a, on_backoff, &l->q[i]);
    }
    jq_args_reset(a);
}

/* The entry of queue q's that the script's stream name s is (a level's,
 * levels.h), or q. */
static int level_of(const jq_limit_t *l, int q, const redisReply *s) {
    const jq_queue_t *base = &l->env.queues[q];
    if (!base->levelled || s->type != REDIS_REPLY_STRING) return q;
    for (int p = 0; p < JQ_PRIO_N; p++) {
        const char *k = l->env.queues[base->at[p]].stream;
        if (strlen(k) == s->len && memcmp(k, s->str, s->len) == 0) return base->at[p];
    }
    return q;
}

static void take(jq_limit_queue_t *lq, const redisReply *out) {
    jq_limit_t *l = lq->l;
    for (size_t i = 0; i < out->elements; i++) {
        redisReply *e = out->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->elements > 4 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= JQ_ENTRY_ID_MAX ||
            e->element[1]->type != REDIS_REPLY_ARRAY || e->element[2]->type != REDIS_REPLY_INTEGER)
            continue;
        int q = e->elements == 4 ? level_of(l, lq->q, e->element[3]) : lq->q;
        jq_fetch_intake(l->b.fetch, q, e->element[0]->str, e->element[1], e->element[2]->integer);
    }
}

static void on_permits(redisAsyncContext *ac, void *rp, void *priv) {
    jq_limit_queue_t *lq = priv;
    jq_limit_t *l = lq->l;
    redisReply *reply = rp;
    int64_t now = jq_now_ms();
    lq->next_ms = now + JQ_LIMIT_RETRY_MS;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[1]->type == REDIS_REPLY_INTEGER) {
        long long got = reply->element[0]->integer, wait = reply->element[1]->integer;
        if (reply->elements == 2) { /* the backoff key lives */
            lq->slow_until_ms = now + wait;
            lq->next_ms = now + wait;
        } else if (reply->elements >= 5 && !*l->env.stopping) {
            take(lq, reply->element[2]);
            long long want = lq->res.count[lq->q], allowed = reply->element[3]->integer;
            if (got == allowed && allowed < want) lq->held_back += want - allowed;
            lq->leases = reply->element[4]->integer;
            if (wait > 0)
                lq->next_ms = now + wait;
            else if (got > 0 && wait == 0)
                lq->next_ms = 0;
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        if (!lq->warned)
            jq_warn("queue %s: limited read: %s", l->env.queues[lq->q].name, reply->str);
        lq->warned = 1;
        lq->next_ms = now + JQ_LIMIT_POLL_MS;
    }
    lq->asking = 0;
    jq_admit_unreserve(l->env.admit, &lq->res);
    if (*l->env.stopping) return;
    l->env.kick(l->env.worker);
    l->env.maybe_exit(l->env.worker);
}

/* The most permits one ask can get: the bucket's burst (as the script
 * works it out), the concurrency; -1 no bound. */
static long long most(const jq_limit_queue_t *lq) {
    long long c = -1;
    if (lq->rate > 0) {
        c = lq->rate * 200 / lq->period_ms;
        if (c < 1) c = 1;
        if (c > lq->rate) c = lq->rate;
    }
    if (lq->concurrency > 0 && (c < 0 || lq->concurrency < c)) c = lq->concurrency;
    return c;
}

/* Asks for queue q's permits and reads with them, if it is due and the
 * worker has free slots for it: no more than one ask can get, so that
 * the rest stay free for the other queues. Returns the ms until it may
 * ask again (0: now, but no slot was free), or -1 (not limited, or an
 * ask is out). */
static int64_t ask(jq_limit_queue_t *lq, int64_t now) {
    jq_limit_t *l = lq->l;
    jq_queue_t *q = &l->env.queues[lq->q];
    /* levels_unknown: its high jobs must not wait behind a first read of
     * normal ones (levels.h). */
    if (q->is_level || q->limited != 1 || q->paused || q->levels_unknown || !jq_queue_ok(q) ||
        lq->asking)
        return -1;
    int64_t due = lq->next_ms > lq->slow_until_ms ? lq->next_ms : lq->slow_until_ms;
    if (now < due) return due - now;
    int skip[JQ_QSLOTS];
    for (int i = 0; i < *l->env.nqueues; i++) skip[i] = i != lq->q;
    if (jq_admit_plan(l->env.admit, skip, 0, 0, &lq->res) <= 0) return 0;
    long long cap = most(lq);
    if (cap > 0 && lq->res.count[lq->q] > cap) {
        jq_admit_read_t extra;
        memset(&extra, 0, sizeof(extra));
        extra.count[lq->q] = lq->res.count[lq->q] - cap;
        extra.uses[lq->q] = lq->res.uses[lq->q];
        jq_admit_unreserve(l->env.admit, &extra);
        lq->res.count[lq->q] = cap;
    }
    char k[5][JQ_KEY_MAX];
    key(l, lq->q, "limit", k[0]);
    key(l, lq->q, "leases", k[1]);
    key(l, lq->q, "bucket", k[2]);
    key(l, lq->q, "backoff", k[3]);
    jq_args_t *a = &l->args;
    jq_args_reset(a);
    jq_args_str(a, "EVAL");
    jq_args_add(a, jq_limit_lua, sizeof(jq_limit_lua) - 1);
    jq_args_str(a, q->levelled ? "7" : "5");
    for (int i = 0; i < 4; i++) jq_args_str(a, k[i]);
    jq_args_str(a, q->stream);
    if (q->levelled) {
        jq_args_str(a, l->env.queues[q->at[JQ_PRIO_HIGH]].stream);
        jq_args_str(a, l->env.queues[q->at[JQ_PRIO_LOW]].stream);
    }
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, l->env.worker_id);
    jq_args_ll(a, lq->res.count[lq->q]);
    jq_args_ll(a, l->env.opt->visibility_ms);
    jq_args_str(a, JQ_TYPES_CONSUMER);
    if (jq_rconn_args(l->env.conn, a, on_permits, lq) == 0)
        lq->asking = 1;
    else
        jq_admit_unreserve(l->env.admit, &lq->res);
    jq_args_reset(a);
    return -1;
}

int64_t jq_limit_kick(jq_limit_t *l) {
    if (!l->nlimited || *l->b.draining || *l->env.stopping || jq_finish_held(l->b.finish) ||
        !l->env.conn->up)
        return -1;
    int64_t now = jq_now_ms(), next = -1;
    for (int i = 0; i < *l->env.nqueues; i++) {
        int64_t n = ask(&l->q[i], now);
        if (n >= 0 && (next < 0 || n < next)) next = n;
    }
    return next;
}

void jq_limit_tick(jq_limit_t *l, int64_t now) {
    if (!l->env.conn->up) return;
    int hashes = !l->last_poll_ms || now - l->last_poll_ms >= JQ_LIMIT_POLL_MS;
    if (hashes) l->last_poll_ms = now;
    poll_limits(l, hashes);
    for (int i = 0; i < *l->env.nqueues; i++) update(&l->q[i], now);
    if (l->nlimited) l->env.kick(l->env.worker);
}

void jq_limit_slow(jq_limit_t *l, int q, int64_t until_ms) {
    jq_limit_queue_t *lq = &l->q[jq_queue_base(l->env.queues, q)];
    if (until_ms > lq->slow_until_ms) lq->slow_until_ms = until_ms;
    update(lq, jq_now_ms());
}
