/* Per-queue settings polled once a second. See settings.h. */

#include <string.h>

#include "keys.h"
#include "log.h"
#include "settings.h"

void jq_settings_init(jq_settings_t *s, const jq_stage_env_t *env) {
    memset(s, 0, sizeof(*s));
    s->env = *env;
}

static void on_keep_done(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    redisReply *r = rp;
    jq_queue_t *q = priv;
    if (!r) return; /* lost: the next poll asks again */
    long long n = 0;
    if (r->type == REDIS_REPLY_STRING &&
        (jq_parse_ll(r->str, r->len, 0, JQ_KEEP_DONE_MAX, &n) < 0)) {
        /* A value we cannot use indexes nothing, said once per change. */
        if (q->keep_done >= 0)
            jq_warn("queue %s: settings keep_done '%.*s' is not 0 to %d: "
                    "no done index",
                    q->name, (int)(r->len > 40 ? 40 : r->len), r->str, JQ_KEEP_DONE_MAX);
        q->keep_done = -1;
        return;
    }
    if (n != (q->keep_done < 0 ? 0 : q->keep_done))
        jq_info("queue %s: %s the last %lld done jobs", q->name,
                n ? "indexing" : "no longer indexing", n ? n : (long long)q->keep_done);
    q->keep_done = n;
}

void jq_settings_tick(jq_settings_t *s, int64_t now) {
    if (!s->env.conn->up || now - s->last_poll_ms < JQ_SETTINGS_POLL_MS) return;
    s->last_poll_ms = now;
    jq_args_t a;
    jq_args_init(&a);
    for (int i = 0; i < *s->env.nqueues; i++) {
        if (s->env.queues[i].is_level) continue; /* its queue's settings */
        char key[JQ_KEY_MAX];
        jq_key(key, sizeof(key), s->env.opt->prefix, s->env.queues[i].name, "settings");
        jq_args_reset(&a);
        jq_args_str(&a, "HGET");
        jq_args_str(&a, key);
        jq_args_str(&a, "keep_done");
        jq_rconn_args(s->env.conn, &a, on_keep_done, &s->env.queues[i]);
    }
    jq_args_destroy(&a);
}
