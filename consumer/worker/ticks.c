/* Firing schedules. See ticks.h, and PROTOCOL §13 for the keys. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cron.h"
#include "log.h"
#include "qhealth.h"
#include "script.h"
#include "ticks.h"

#define POLL_BUSY_MS 250  /* a queue with schedules */
#define POLL_IDLE_MS 2000 /* one without: a new schedule is seen within 2 s */
#define POLL_BATCH 100
#define WARN_EVERY_MS 60000
#define ERROR_RETRY_MS 60000 /* a schedule that cannot be used is looked at again */

/* KEYS[1] the schedules zset; ARGV[1] the queue's key prefix "<p>:{q}:",
 * ARGV[2] the batch. Returns {now (Redis's clock, ms), ZCARD, dropped,
 * then per due schedule: name, tick, every, cron, tz ('' when absent)}.
 * A member without a schedule hash (removed by a client that left the
 * member behind) is dropped: there is nothing to fire. */
const char jq_ticks_poll_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, "
    "tonumber(ARGV[2]))\n"
    "local out = {now, redis.call('ZCARD', KEYS[1]), 0}\n"
    "for i = 1, #due, 2 do\n"
    "  local key = ARGV[1] .. 'schedule:' .. due[i]\n"
    "  local h = redis.pcall('HMGET', key, 'every', 'cron', 'tz')\n"
    "  if not h.err and not h[1] and not h[2] and redis.call('EXISTS', key) == 0 then\n"
    "    redis.call('ZREM', KEYS[1], due[i])\n"
    "    out[3] = out[3] + 1\n"
    "  else\n"
    "    if h.err then h = {} end\n"
    "    out[#out + 1] = due[i]\n"
    "    out[#out + 1] = due[i + 1]\n"
    "    out[#out + 1] = h[1] or ''\n"
    "    out[#out + 1] = h[2] or ''\n"
    "    out[#out + 1] = h[3] or ''\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS[1] the schedules zset, KEYS[2] the schedule's hash, KEYS[3] its
 * job template, KEYS[4] the stream; ARGV[1] name, ARGV[2] the tick to
 * fire, ARGV[3] the next tick, ARGV[4] now, ARGV[5] JQ_JOB_MAX_FIELDS,
 * ARGV[6] why the schedule cannot be used ('' when it can).
 *
 * The check comes first: if the stored tick is not ARGV[2], another
 * worker fired it (or the schedule was replaced or removed), and nothing
 * is done. The XADD comes before the ZADD of the next tick, so a refused
 * XADD (the stream of another type) leaves the tick due, fired later.
 * Returns 1 fired, 0 not the stored tick, 2 paused, 3 a first tick
 * stored (a client added it with tick 0), 4 the error recorded. */
const char jq_ticks_fire_lua[] =
    "local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end\n"
    "local function later(rc)\n"
    "  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])\n"
    "  return rc\n"
    "end\n"
    "local function fault(why)\n"
    "  redis.call('HSET', KEYS[2], 'error', why)\n"
    "  return later(4)\n"
    "end\n"
    "if ARGV[6] ~= '' then return fault(ARGV[6]) end\n"
    "if tonumber(ARGV[2]) <= 0 then return later(3) end\n"
    "if redis.call('HGET', KEYS[2], 'paused') == '1' then return later(2) end\n"
    "local h = redis.call('HGETALL', KEYS[3])\n"
    "if #h == 0 then return fault('no job template (' .. KEYS[3] .. ')') end\n"
    "local id = ARGV[1] .. ':' .. ARGV[2]\n"
    "local args, own = {KEYS[4], '*', 'id', id, 'schedule', ARGV[1], 'tick', ARGV[2]}, 0\n"
    "for i = 1, #h, 2 do\n"
    "  local f = h[i]\n"
    "  if f ~= 'id' and f ~= 'attempt' and f ~= 'schedule' and f ~= 'tick' then\n"
    "    own = own + 1\n"
    "    args[#args + 1] = f\n"
    "    args[#args + 1] = h[i + 1]\n"
    "  end\n"
    "end\n"
    "if own > tonumber(ARGV[5]) then\n"
    "  return fault('job template has ' .. own .. ' fields (at most ' .. ARGV[5] .. ')')\n"
    "end\n"
    "redis.call('XADD', unpack(args))\n"
    "redis.call('HSET', KEYS[2], 'last_tick', ARGV[2], 'last_fired_at', ARGV[4], 'last_job', id)\n"
    "redis.call('HDEL', KEYS[2], 'error')\n"
    "return later(1)\n";

/* The scripts (script.h), one of each per process. */
static jq_script_t poll_script = {jq_ticks_poll_lua, "", 0};
static jq_script_t fire_script = {jq_ticks_fire_lua, "", 0};

void jq_ticks_init(jq_ticks_t *t, const jq_stage_env_t *env, const int *draining) {
    memset(t, 0, sizeof(*t));
    t->env = *env;
    t->draining = draining;
    for (int i = 0; i < JQ_QUEUES_MAX; i++) {
        t->qref[i].t = t;
        t->qref[i].q = i;
    }
}

void jq_ticks_on_connect(jq_ticks_t *t) {
    /* A reconnect may have lost a poll's reply: poll afresh. */
    memset(t->polling, 0, sizeof(t->polling));
    jq_script_load(t->env.conn, &poll_script);
    jq_script_load(t->env.conn, &fire_script);
}

/* Whether a reply is an error worth a line; reloads the scripts on
 * NOSCRIPT. */
static int reply_failed(jq_ticks_t *t, const redisReply *r, const char *what, const char *queue) {
    if (r->type != REDIS_REPLY_ERROR) return 0;
    if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        jq_ticks_on_connect(t);
    else if (!jq_redis_refuses(r->str))
        jq_error("%s schedules of %s: %s", what, queue, r->str);
    return 1;
}

static void on_fired(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_ticks_qref_t *ref = priv;
    jq_ticks_t *t = ref->t;
    (void)ac;
    if (!reply || reply_failed(t, reply, "firing", t->env.queues[ref->q].name)) return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) t->fired++;
}

/* The next tick of a schedule after `from`, or -1 with err. */
static int64_t next_tick(const char *every, const char *cron, const char *tzname, int64_t from,
                         char *err, size_t errlen) {
    if (*every) {
        char *end;
        long long ms = strtoll(every, &end, 10);
        if (*end || ms < 1) {
            snprintf(err, errlen, "bad every '%.40s' (want milliseconds >= 1)", every);
            return -1;
        }
        return jq_every_next(ms, from);
    }
    if (!*cron) {
        snprintf(err, errlen, "the schedule has neither every nor cron");
        return -1;
    }
    jq_cron_t c;
    if (jq_cron_parse(&c, cron, err, errlen) < 0) return -1;
    jq_tz_t *tz = jq_tz_load(tzname, err, errlen);
    if (!tz) return -1;
    int64_t next = jq_cron_next(&c, tz, from);
    jq_tz_free(tz);
    if (next < 0) snprintf(err, errlen, "cron expression '%.80s' never fires", cron);
    return next;
}

static const char *str_of(const redisReply *r) {
    return r->type == REDIS_REPLY_STRING ? r->str : "";
}

/* Fires one due schedule: row is its five elements of the poll's reply. */
static void fire(jq_ticks_t *t, int qi, redisReply **row, int64_t now) {
    const char *name = str_of(row[0]), *prefix = t->env.opt->prefix;
    const char *qname = t->env.queues[qi].name;
    long long tick = (long long)strtod(str_of(row[1]), NULL);
    char err[256] = "";
    int64_t next = next_tick(str_of(row[2]), str_of(row[3]), str_of(row[4]),
                             tick > now ? tick : now, err, sizeof(err));
    if (next < 0) {
        next = now + ERROR_RETRY_MS;
        if (now - t->last_warn_ms >= WARN_EVERY_MS) {
            t->last_warn_ms = now;
            jq_warn("queue %s: schedule %s cannot fire: %s", qname, name, err);
        }
    }
    char zkey[JQ_KEY_MAX], hkey[JQ_KEY_MAX], jkey[JQ_KEY_MAX];
    jq_key(zkey, sizeof(zkey), prefix, qname, "schedules");
    jq_key_schedule(hkey, sizeof(hkey), prefix, qname, name, 0);
    jq_key_schedule(jkey, sizeof(jkey), prefix, qname, name, 1);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVALSHA");
    jq_args_str(&a, fire_script.sha);
    jq_args_str(&a, "4");
    jq_args_str(&a, zkey);
    jq_args_str(&a, hkey);
    jq_args_str(&a, jkey);
    jq_args_str(&a, t->env.queues[qi].stream);
    jq_args_str(&a, name);
    jq_args_ll(&a, tick);
    jq_args_ll(&a, (long long)next);
    jq_args_ll(&a, (long long)now);
    jq_args_ll(&a, JQ_JOB_MAX_FIELDS);
    jq_args_str(&a, err);
    jq_rconn_args(t->env.conn, &a, on_fired, &t->qref[qi]);
    jq_args_destroy(&a);
}

static void on_polled(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_ticks_qref_t *ref = priv;
    jq_ticks_t *t = ref->t;
    int qi = ref->q;
    (void)ac;
    t->polling[qi] = 0;
    if (!reply || *t->env.stopping) return;
    if (reply_failed(t, reply, "polling", t->env.queues[qi].name)) return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    int64_t now = reply->element[0]->integer;
    t->has[qi] = reply->element[1]->integer > 0;
    /* The next poll is timed from this answer, which says whether the
     * queue has schedules now (one was just added: poll often at once),
     * with a jitter of +-25% so that the workers' polls spread out over
     * the period instead of coming together: a due tick is then seen
     * sooner. */
    int64_t period = t->has[qi] ? POLL_BUSY_MS : POLL_IDLE_MS;
    t->next_poll_ms[qi] = jq_now_ms() + period * 3 / 4 + rand() % (period / 2 + 1);
    if (reply->element[2]->integer > 0)
        jq_warn("queue %s: %lld schedules without their hash dropped", t->env.queues[qi].name,
                reply->element[2]->integer);
    if (*t->draining) return;
    for (size_t i = 3; i + 5 <= reply->elements; i += 5) fire(t, qi, &reply->element[i], now);
}

static void poll_queue(jq_ticks_t *t, int qi) {
    const jq_queue_t *q = &t->env.queues[qi];
    char zkey[JQ_KEY_MAX], base[JQ_KEY_MAX];
    jq_key(zkey, sizeof(zkey), t->env.opt->prefix, q->name, "schedules");
    jq_key(base, sizeof(base), t->env.opt->prefix, q->name, "");
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVALSHA");
    jq_args_str(&a, poll_script.sha);
    jq_args_str(&a, "1");
    jq_args_str(&a, zkey);
    jq_args_str(&a, base);
    jq_args_ll(&a, POLL_BATCH);
    if (jq_rconn_args(t->env.conn, &a, on_polled, &t->qref[qi]) == 0) t->polling[qi] = 1;
    jq_args_destroy(&a);
}

void jq_ticks_tick(jq_ticks_t *t, int64_t now) {
    if (*t->draining) return;
    if (!jq_script_ready(&poll_script) || !jq_script_ready(&fire_script)) {
        jq_ticks_on_connect(t);
        return;
    }
    for (int i = 0; i < *t->env.nqueues; i++) {
        if (t->polling[i] || now < t->next_poll_ms[i] || !jq_queue_ok(&t->env.queues[i])) continue;
        /* Until the answer sets it: a lost one is asked again then. */
        t->next_poll_ms[i] = now + POLL_IDLE_MS;
        poll_queue(t, i);
    }
}
