/* The consumers of dead workers: see handback.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handback.h"
#include "job.h"
#include "keys.h"
#include "log.h"

#define SWEEP_EVERY_MS 60000
#define ORPHAN_IDLE_MS 600000

/* The handback of one dead worker in one queue (priv of its reply). */
typedef struct reply_ctx {
    jq_handback_t *h;
    jq_gone_t *g;
    int q;
} reply_ctx_t;

/* For one queue and one dead consumer, atomically: its pending ids are
 * re-stamped as long idle, so the next reclaim of any live worker takes them
 * (and counts the delivery, which catches poison jobs); once it holds
 * nothing, it leaves the group (DELCONSUMER earlier would drop its entries,
 * and they would never run). XCLAIM keeps the entries owned by the dead
 * consumer until a live one claims them, so nothing is ever unowned, and
 * JUSTID keeps their delivery count as it is. Being one script, it cannot
 * take back an entry a live worker claimed meanwhile. Returns how many
 * entries the consumer still holds (0: it was deleted).
 * ARGV[4] = 1 for a worker that exited cleanly (a forced stop, a read in
 * flight): what it left was not a crash, so each entry's delivery is
 * uncounted, and a job on its last attempt runs instead of dying "worker
 * lost". Done once per dead worker and queue. The XCLAIMs take 1,000
 * ids each: a command in a script takes at most about 8,000 arguments
 * (Lua's unpack), and one XCLAIM of all 10,000 failed the whole script
 * (the jobs then waited out the visibility timeout). */
static const char handback_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 10000, ARGV[2])\n"
    "if #p == 0 then\n"
    "  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "  return 0\n"
    "end\n"
    "if ARGV[4] == '1' then\n"
    "  for _, e in ipairs(p) do\n"
    "    local n = e[4] > 0 and e[4] - 1 or 0\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, e[1], 'IDLE', ARGV[3],\n"
    "               'RETRYCOUNT', n, 'JUSTID')\n"
    "  end\n"
    "  return #p\n"
    "end\n"
    "for s = 1, #p, 1000 do\n"
    "  local args = {KEYS[1], ARGV[1], ARGV[2], 0}\n"
    "  for j = s, math.min(s + 999, #p) do args[#args + 1] = p[j][1] end\n"
    "  args[#args + 1] = 'IDLE'\n"
    "  args[#args + 1] = ARGV[3]\n"
    "  args[#args + 1] = 'JUSTID'\n"
    "  redis.call('XCLAIM', unpack(args))\n"
    "end\n"
    "return #p\n";

/* The stamp: far past any visibility timeout. reclaim.c takes entries idle
 * past visibility * 100 even when its worker is full: keep the two in step. */
static long long handback_idle(const jq_options_t *o) { return o->visibility_ms * 100 + 3600000LL; }

static void on_handback(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    reply_ctx_t *ctx = priv;
    jq_gone_t *g = ctx->g;
    jq_handback_t *h = ctx->h;
    int q = ctx->q;
    redisReply *r = rp;
    free(ctx);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        g->uncount &= ~(1ULL << q);
        if (r->integer > 0 && g->passes == 1)
            jq_info("handed back %lld pending jobs of dead worker %s", r->integer, g->name);
        /* The live workers reclaim now rather than on their next reclaim
         * tick (up to 200 ms away): recovery in milliseconds. */
        if (r->integer > 0) h->on_handed(h->data);
        g->held += r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0) {
        /* No such queue or group: nothing held there. */
    } else {
        if (r && r->type == REDIS_REPLY_ERROR) jq_error("handing back jobs: %s", r->str);
        g->held++; /* unknown: try again next pass */
    }
    if (--g->replies == 0 && g->held == 0) g->used = 0; /* gone from every queue */
}

/* The script for g in queue q's stream of level p; 0 when sent (its reply
 * will come). */
static int send_handback(jq_handback_t *h, jq_gone_t *g, int q, jq_prio_t p, const char *vis) {
    char key[JQ_KEY_MAX];
    jq_key(key, sizeof(key), h->opt->prefix, h->opt->queues[q], jq_prio_stream(p));
    reply_ctx_t *ctx = malloc(sizeof(*ctx));
    if (!ctx) return -1;
    ctx->h = h;
    ctx->g = g;
    ctx->q = q;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVAL");
    jq_args_str(&a, handback_lua);
    jq_args_str(&a, "1");
    jq_args_str(&a, key);
    jq_args_str(&a, JQ_GROUP);
    jq_args_str(&a, g->name);
    jq_args_str(&a, vis);
    jq_args_str(&a, (g->uncount >> q) & 1 ? "1" : "0");
    int rc = jq_rconn_args(h->redis, &a, on_handback, ctx);
    jq_args_destroy(&a);
    if (rc != 0) free(ctx);
    return rc;
}

void jq_handback_pass(jq_handback_t *h) {
    if (!h->redis->up) return;
    char vis[24];
    snprintf(vis, sizeof(vis), "%lld", handback_idle(h->opt));
    for (int d = 0; d < JQ_HANDBACK_MAX; d++) {
        jq_gone_t *g = &h->gone[d];
        if (!g->used || g->replies > 0) continue;
        g->held = 0;
        g->passes++;
        /* Every level's stream (PROTOCOL §15): one a queue does not use
         * answers NOGROUP, nothing held. Only when a worker died. */
        for (int q = 0; q < h->opt->nqueues; q++)
            for (int p = 0; p < JQ_PRIO_N; p++) {
                if (send_handback(h, g, q, (jq_prio_t)p, vis) == 0)
                    g->replies++;
                else
                    g->held++;
            }
    }
}

void jq_handback_init(jq_handback_t *h, jq_rconn_t *redis, const jq_options_t *opt,
                      const char *host, jq_handback_fn on_handed, void *data) {
    memset(h, 0, sizeof(*h));
    h->redis = redis;
    h->opt = opt;
    snprintf(h->host, sizeof(h->host), "%s", host);
    h->on_handed = on_handed;
    h->data = data;
}

void jq_handback_add(jq_handback_t *h, int pid, int clean) {
    for (int d = 0; d < JQ_HANDBACK_MAX; d++) {
        jq_gone_t *g = &h->gone[d];
        if (g->used) continue;
        memset(g, 0, sizeof(*g));
        g->used = 1;
        if (clean) g->uncount = h->opt->nqueues >= 64 ? ~0ULL : (1ULL << h->opt->nqueues) - 1;
        snprintf(g->name, sizeof(g->name), "%s:%d", h->host, pid);
        return;
    }
    /* Full: its entries still go to a live worker after the visibility
     * timeout; only the fast path is lost. */
    jq_warn("too many dead workers to hand back at once; worker %d's jobs wait for the visibility "
            "timeout",
            pid);
}

/* Consumers whose workers died with their master (a container gone) are
 * never handed back by anyone: their entries are reclaimed after the
 * visibility timeout, and the consumer itself is swept here once it holds
 * nothing and has not read for ORPHAN_IDLE_MS. Deleting an empty consumer
 * loses nothing: a live one that merely idled is recreated by its next
 * read. */
static const char sweep_lua[] =
    "local n = 0\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

static void on_swept(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *r = rp;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        jq_info("removed %lld idle empty consumers from the group", r->integer);
}

void jq_handback_sweep(jq_handback_t *h, int64_t now_ms) {
    if (!h->redis->up || now_ms - h->last_sweep_ms < SWEEP_EVERY_MS) return;
    h->last_sweep_ms = now_ms;
    for (int q = 0; q < h->opt->nqueues; q++) {
        char key[JQ_KEY_MAX];
        jq_key(key, sizeof(key), h->opt->prefix, h->opt->queues[q], "stream");
        jq_args_t a;
        jq_args_init(&a);
        jq_args_str(&a, "EVAL");
        jq_args_str(&a, sweep_lua);
        jq_args_str(&a, "1");
        jq_args_str(&a, key);
        jq_args_str(&a, JQ_GROUP);
        jq_args_ll(&a, ORPHAN_IDLE_MS);
        jq_rconn_args(h->redis, &a, on_swept, NULL);
        jq_args_destroy(&a);
    }
}
