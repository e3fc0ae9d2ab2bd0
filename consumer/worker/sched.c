/* Promotion of scheduled jobs and trimming of dead sets. See sched.h. */

#include <stdio.h>
#include <string.h>

#include "args.h"
#include "log.h"
#include "qhealth.h"
#include "sched.h"
#include "script.h"

#define PROMOTE_EVERY_MS 200
#define PROMOTE_BATCH 500
#define TRIM_EVERY_MS 1000 /* cheap: a ranged read and a ZCARD when nothing is due */
#define TRIM_BATCH 1000

/* KEYS[1] scheduled zset, KEYS[2] stream, KEYS[3] dead zset, KEYS[4] and
 * KEYS[5] the high and low streams; ARGV[1] now ms, ARGV[2] limit,
 * ARGV[3] the queue's key prefix "<p>:{q}:", ARGV[4] JQ_JOB_MAX_FIELDS,
 * ARGV[5] the worker id. Moves each due job's hash into a stream entry
 * that keeps its id, without the dead-letter fields, in the stream of its
 * level: the hash's field `priority` (high or low; normal, absent or
 * anything else: the queue's stream, levels.h), so that a delayed job and
 * a retry keep their level.
 *
 * A job leaves `scheduled` only once it has landed in the next place: the
 * XADD comes first, then the hash's DEL and the ZREM. Redis does not roll
 * a script back, so a step that fails (the stream of the wrong type) must
 * find the job still whole where it was: the script stops there, and the
 * job is promoted by a later tick. Until 2026-12 the ZREM came first, and
 * an XADD that failed lost the job.
 *
 * A command in a script takes at most about 8,000 arguments (Lua's
 * unpack), so a hash with more than ARGV[4] fields of its own (a delayed
 * job written by a producer, or a dead one run again) is not XADDed: it is
 * dead-lettered here as the intake would (PROTOCOL §1, "Limits"), its
 * result written for a waiter, the ZADD to `dead` before the ZREM. A
 * scheduled id without a job hash, or whose key is not a hash, is dropped
 * (the key is left alone): there is no job to lose.
 *
 * A job that starts afresh (attempt absent or 0: a delayed job, or a dead
 * one run again with the §4 MULTI of any client) loses the result and
 * notify list of its last run here, so that a waiter of the new run is not
 * woken by the old `dead`; a retry (attempt > 0) keeps its `retrying`
 * result, which says what failed last. */
const char jq_sched_promote_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, "
    "tonumber(ARGV[2]))\n"
    "local max, now, base = tonumber(ARGV[4]), ARGV[1], ARGV[3]\n"
    "local missing, dead = 0, 0\n"
    "local function kill(id, jkey, own, att, ttl, notify)\n"
    "  local err = 'too many fields: ' .. own .. ' (at most ' .. max .. ' besides id and "
    "attempt)'\n"
    "  redis.call('HSET', jkey, 'error', err, 'failed_at', now, 'attempt', att)\n"
    "  redis.call('ZADD', KEYS[3], now, id)\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "  local rkey = base .. 'result:' .. id\n"
    "  redis.call('DEL', rkey, rkey .. ':chunks')\n"
    "  if ttl > 0 then\n"
    "    redis.call('HSET', rkey, 'state', 'dead', 'error', err, 'attempts', att, 'finished_at', "
    "now, 'worker', ARGV[5])\n"
    "    redis.call('EXPIRE', rkey, ttl)\n"
    "    if notify then\n"
    "      local nkey = base .. 'notify:' .. id\n"
    "      redis.call('LPUSH', nkey, 'dead')\n"
    "      redis.call('EXPIRE', nkey, ttl)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for _, id in ipairs(due) do\n"
    "  local jkey = base .. 'job:' .. id\n"
    "  local h = redis.pcall('HGETALL', jkey)\n"
    "  if h.err or #h == 0 then\n"
    "    missing = missing + 1\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    "    local args = {KEYS[2], '*', 'id', id}\n"
    "    local fresh, own, att, ttl, notify = true, 0, '0', 86400, false\n"
    "    for i = 1, #h, 2 do\n"
    "      local f, v = h[i], h[i + 1]\n"
    "      if f == 'attempt' then\n"
    "        att = v\n"
    "        if tonumber(v) ~= 0 then fresh = false end\n"
    "      elseif f == 'error' or f == 'failed_at' or f == 'id' then\n"
    "        f = nil\n"
    "      elseif f == 'priority' and (v == 'high' or v == 'low') then\n"
    "        args[1] = v == 'high' and KEYS[4] or KEYS[5]\n"
    "        own = own + 1\n"
    "      else\n"
    "        own = own + 1\n"
    "        if f == 'result_ttl' then\n"
    "          local t = tonumber(v)\n"
    "          if t and t >= 0 and t == math.floor(t) then ttl = t end\n"
    "        elseif f == 'notify' then\n"
    "          notify = v == '1'\n"
    "        end\n"
    "      end\n"
    "      if f and own <= max then\n"
    "        args[#args + 1] = f\n"
    "        args[#args + 1] = v\n"
    "      end\n"
    "    end\n"
    "    if own > max then\n"
    "      kill(id, jkey, own, att, ttl, notify)\n"
    "      dead = dead + 1\n"
    "    else\n"
    "      redis.call('XADD', unpack(args))\n"
    "      redis.call('DEL', jkey)\n"
    "      redis.call('ZREM', KEYS[1], id)\n"
    "      if fresh then\n"
    "        local rkey = base .. 'result:' .. id\n"
    "        redis.call('DEL', rkey, rkey .. ':chunks', base .. 'notify:' .. id)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if dead > 0 then\n"
    "  local m = base .. 'stats:' .. math.floor(tonumber(now) / 60000)\n"
    "  redis.call('HINCRBY', base .. 'stats', 'dead', dead)\n"
    "  redis.call('HINCRBY', m, 'dead', dead)\n"
    "  redis.call('EXPIRE', m, 86400)\n"
    "end\n"
    "return {#due, missing, dead}\n";

/* KEYS[1] dead zset, KEYS[2] scheduled zset; ARGV[1] now ms, ARGV[2] ttl
 * ms, ARGV[3] max jobs, ARGV[4] limit, ARGV[5] "<p>:{q}:" key prefix.
 * Removes the oldest dead jobs past the age or count bound, with their job
 * hashes and chunk lists -- unless the id is scheduled again (a producer
 * reused it): then the hash and chunks are the scheduled job's, and only
 * the old dead entry goes. */
const char jq_sched_trim_lua[] =
    "local cut = tonumber(ARGV[1]) - tonumber(ARGV[2])\n"
    "local limit = tonumber(ARGV[4])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cut, 'LIMIT', 0, limit)\n"
    "local over = redis.call('ZCARD', KEYS[1]) - #ids - tonumber(ARGV[3])\n"
    "if over > 0 then\n"
    "  if over > limit then over = limit end\n"
    "  local more = redis.call('ZRANGE', KEYS[1], #ids, #ids + over - 1)\n"
    "  for _, id in ipairs(more) do ids[#ids + 1] = id end\n"
    "end\n"
    "for _, id in ipairs(ids) do\n"
    "  if not redis.call('ZSCORE', KEYS[2], id) then\n"
    "    redis.call('DEL', ARGV[5] .. 'job:' .. id, ARGV[5] .. 'payload:' .. id)\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], id)\n"
    "end\n"
    "return #ids\n";

/* The scripts, loaded by SCRIPT LOAD (script.h): the same for every
 * queue, so one of each per process. */
static jq_script_t promote_script = {jq_sched_promote_lua, "", 0};
static jq_script_t trim_script = {jq_sched_trim_lua, "", 0};

void jq_sched_init(jq_sched_t *s, const jq_stage_env_t *env, const int *draining,
                   void (*key_error)(void *worker, int q, const char *err)) {
    memset(s, 0, sizeof(*s));
    s->env = *env;
    s->draining = draining;
    s->key_error = key_error;
    for (int i = 0; i < JQ_QSLOTS; i++) {
        s->qref[i].s = s;
        s->qref[i].q = i;
    }
}

void jq_sched_on_connect(jq_sched_t *s) {
    jq_script_load(s->env.conn, &promote_script);
    jq_script_load(s->env.conn, &trim_script);
}

static void promote(jq_sched_t *s, int qi);

static void on_promoted(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_sched_qref_t *ref = priv;
    jq_sched_t *s = ref->s;
    jq_queue_t *q = &s->env.queues[ref->q];
    (void)ac;
    if (!reply) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOSCRIPT after a Redis restart without persistence of scripts. */
        if (strncmp(reply->str, "NOSCRIPT", 8) == 0) jq_sched_on_connect(s);
        /* Redis refusing writes for a while (maxmemory, a read-only
         * replica): the promotion waits, like the outcomes (finish.c says
         * so once); not a line every tick. */
        else if (jq_redis_refuses(reply->str))
            return;
        else if (strstr(reply->str, "WRONGTYPE"))
            s->key_error(s->env.worker, ref->q, "WRONGTYPE");
        else
            jq_error("promoting scheduled jobs of %s: %s", q->name, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    long long n = reply->element[0]->integer, missing = reply->element[1]->integer;
    long long dead = reply->element[2]->integer;
    if (missing) jq_warn("queue %s: %lld scheduled ids had no job hash; dropped", q->name, missing);
    if (dead)
        jq_warn("queue %s: %lld scheduled jobs had more than %d fields; dead-lettered", q->name,
                dead, JQ_JOB_MAX_FIELDS);
    /* A full batch means more may be due: go on at once, not next tick. */
    if (n == PROMOTE_BATCH && !*s->env.stopping) promote(s, ref->q);
}

static void promote(jq_sched_t *s, int qi) {
    const jq_queue_t *q = &s->env.queues[qi];
    const char *prefix = s->env.opt->prefix;
    char zkey[JQ_KEY_MAX], skey[JQ_KEY_MAX], dkey[JQ_KEY_MAX], base[JQ_KEY_MAX], now[24];
    char hkey[JQ_KEY_MAX], lkey[JQ_KEY_MAX];
    jq_key(zkey, sizeof(zkey), prefix, q->name, "scheduled");
    jq_key(skey, sizeof(skey), prefix, q->name, "stream");
    jq_key(dkey, sizeof(dkey), prefix, q->name, "dead");
    jq_key(hkey, sizeof(hkey), prefix, q->name, jq_prio_stream(JQ_PRIO_HIGH));
    jq_key(lkey, sizeof(lkey), prefix, q->name, jq_prio_stream(JQ_PRIO_LOW));
    jq_key(base, sizeof(base), prefix, q->name, "");
    snprintf(now, sizeof(now), "%lld", (long long)jq_now_ms());
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVALSHA");
    jq_args_str(&a, promote_script.sha);
    jq_args_str(&a, "5");
    jq_args_str(&a, zkey);
    jq_args_str(&a, skey);
    jq_args_str(&a, dkey);
    jq_args_str(&a, hkey);
    jq_args_str(&a, lkey);
    jq_args_str(&a, now);
    jq_args_ll(&a, PROMOTE_BATCH);
    jq_args_str(&a, base);
    jq_args_ll(&a, JQ_JOB_MAX_FIELDS);
    jq_args_str(&a, s->env.worker_id);
    jq_rconn_args(s->env.conn, &a, on_promoted, &s->qref[qi]);
    jq_args_destroy(&a);
}

static void on_trimmed(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    jq_queue_t *q = priv;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        jq_error("trimming dead jobs of %s: %s", q->name, reply->str);
    else if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        jq_info("queue %s: trimmed %lld dead jobs", q->name, reply->integer);
}

static void trim(jq_sched_t *s, jq_queue_t *q, int64_t now) {
    const jq_options_t *o = s->env.opt;
    char dkey[JQ_KEY_MAX], zkey[JQ_KEY_MAX], base[JQ_KEY_MAX];
    jq_key(dkey, sizeof(dkey), o->prefix, q->name, "dead");
    jq_key(zkey, sizeof(zkey), o->prefix, q->name, "scheduled");
    jq_key(base, sizeof(base), o->prefix, q->name, "");
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVALSHA");
    jq_args_str(&a, trim_script.sha);
    jq_args_str(&a, "2");
    jq_args_str(&a, dkey);
    jq_args_str(&a, zkey);
    jq_args_ll(&a, (long long)now);
    jq_args_ll(&a, o->dead_ttl * 1000);
    jq_args_ll(&a, o->dead_max);
    jq_args_ll(&a, TRIM_BATCH);
    jq_args_str(&a, base);
    jq_rconn_args(s->env.conn, &a, on_trimmed, q);
    jq_args_destroy(&a);
}

void jq_sched_tick(jq_sched_t *s, int64_t now) {
    if (*s->draining) return;
    if (!jq_script_ready(&promote_script) || !jq_script_ready(&trim_script)) {
        /* Not loaded yet, or the load failed: ask again (unless an
         * answer is outstanding). */
        jq_sched_on_connect(s);
        return;
    }
    if (now - s->last_promote_ms >= PROMOTE_EVERY_MS) {
        s->last_promote_ms = now;
        for (int i = 0; i < *s->env.nqueues; i++)
            if (!s->env.queues[i].is_level && jq_queue_ok(&s->env.queues[i])) promote(s, i);
    }
    if (now - s->last_trim_ms >= TRIM_EVERY_MS) {
        s->last_trim_ms = now;
        for (int i = 0; i < *s->env.nqueues; i++)
            if (!s->env.queues[i].is_level) trim(s, &s->env.queues[i], now);
    }
}
