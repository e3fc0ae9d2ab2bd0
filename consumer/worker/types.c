/* Job types this worker does not handle: published, read back, and the
 * hand-back of an entry another worker handles. See types.h. */

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "types.h"

/* Stamped idle as the master stamps a dead worker's entries (handback.c),
 * so a reclaim takes them even from a full worker (reclaim.c). */
static long long handback_idle(const jq_options_t *o) { return o->visibility_ms * 100 + 3600000LL; }

long long jq_types_grace_ms(const jq_types_t *t) { return 3 * t->env.opt->heartbeat_ms; }

int jq_types_init(jq_types_t *t, const jq_stage_env_t *env, const jq_registry_t *reg) {
    memset(t, 0, sizeof(*t));
    t->env = *env;
    t->reg = reg;
    jq_args_init(&t->args);
    for (int i = 0; i < JQ_QSLOTS; i++) {
        t->qref[i].t = t;
        t->qref[i].q = i;
    }
    size_t len = 1;
    for (int i = 0; i < reg->n; i++) len += strlen(reg->h[i]->name) + 1;
    t->csv = malloc(len);
    if (!t->csv) return -1;
    t->csv[0] = '\0';
    for (int i = 0; i < reg->n; i++) {
        if (i) strcat(t->csv, ",");
        strcat(t->csv, reg->h[i]->name);
    }
    return 0;
}

void jq_types_destroy(jq_types_t *t) {
    for (int i = 0; i < JQ_QSLOTS; i++) free(t->known[i]);
    free(t->csv);
    jq_args_destroy(&t->args);
    memset(t, 0, sizeof(*t));
}

const char *jq_types_csv(const jq_types_t *t) { return t->csv ? t->csv : ""; }

/* ZRANGEBYSCORE ... WITHSCORES of a queue's set: [name, score, ...]. */
static void on_known(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_types_qref_t *ref = priv;
    jq_types_t *t = ref->t;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || *t->env.stopping) return;
    size_t n = reply->elements / 2;
    jq_types_known_t *k = n ? calloc(n, sizeof(*k)) : NULL;
    if (n && !k) return; /* out of memory: the last set stays */
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *name = reply->element[2 * i], *score = reply->element[2 * i + 1];
        if (name->type != REDIS_REPLY_STRING || name->len > JQ_NAME_MAX ||
            score->type != REDIS_REPLY_STRING)
            continue;
        memcpy(k[m].name, name->str, name->len);
        k[m].name[name->len] = '\0';
        k[m].seen_ms = strtoll(score->str, NULL, 10);
        m++;
    }
    free(t->known[ref->q]);
    t->known[ref->q] = k;
    t->nknown[ref->q] = m;
    t->loaded[ref->q] = 1;
    t->read_ms[ref->q] = t->asked_ms[ref->q];
}

void jq_types_publish(jq_types_t *t, int64_t now) {
    jq_args_t *a = &t->args;
    long long live = (long long)now - jq_types_grace_ms(t);
    for (int q = 0; q < *t->env.nqueues; q++) {
        if (t->env.queues[q].is_level) continue; /* its queue's set serves it */
        char key[JQ_KEY_MAX];
        jq_key(key, sizeof(key), t->env.opt->prefix, t->env.queues[q].name, "types");
        if (t->reg->n > 0) {
            jq_args_reset(a);
            jq_args_str(a, "ZADD");
            jq_args_str(a, key);
            jq_args_str(a, "GT");
            for (int i = 0; i < t->reg->n; i++) {
                jq_args_ll(a, (long long)now);
                jq_args_str(a, t->reg->h[i]->name);
            }
            jq_rconn_args(t->env.conn, a, NULL, NULL);
        }
        jq_args_reset(a);
        jq_args_str(a, "ZREMRANGEBYSCORE");
        jq_args_str(a, key);
        jq_args_str(a, "-inf");
        jq_args_ll(a, live - 1);
        jq_rconn_args(t->env.conn, a, NULL, NULL);
        jq_args_reset(a);
        jq_args_str(a, "ZRANGEBYSCORE");
        jq_args_str(a, key);
        jq_args_ll(a, live);
        jq_args_str(a, "+inf");
        jq_args_str(a, "WITHSCORES");
        t->asked_ms[q] = now;
        jq_rconn_args(t->env.conn, a, on_known, &t->qref[q]);
    }
    jq_args_reset(a);
}

/* Whether a worker of queue q that handles type heartbeat within the
 * grace, as the set read last says. The grace is counted back from when
 * that read was sent, not from now: a read is at most a heartbeat old, and
 * a late timer of ours (a loaded box) must not turn a live worker's
 * heartbeat into a dead letter of its jobs. A stale read only delays a
 * dead letter, it never makes one. */
static int live_elsewhere(const jq_types_t *t, int q, const jq_str_t *type) {
    long long live = (long long)t->read_ms[q] - jq_types_grace_ms(t);
    for (int i = 0; i < t->nknown[q]; i++) {
        const jq_types_known_t *k = &t->known[q][i];
        if (strlen(k->name) == type->len && memcmp(k->name, type->p, type->len) == 0)
            return k->seen_ms >= live;
    }
    return 0;
}

/* The entry's age from its id ("ms-seq", Redis's clock when it was added). */
static long long age_ms(const char *entry_id, int64_t now) {
    return (long long)now - strtoll(entry_id, NULL, 10);
}

/* Claims the entry to the consumer `type=<type>` with min-idle 0, stamped
 * idle for long and its delivery uncounted (RETRYCOUNT): it never leaves
 * the pending list, so a failure here only leaves it ours until the
 * visibility timeout. */
static void hand_back(jq_types_t *t, int q, const jq_str_t *type, const char *entry_id,
                      long long deliveries) {
    char owner[sizeof(JQ_TYPES_CONSUMER) + JQ_NAME_MAX];
    snprintf(owner, sizeof(owner), JQ_TYPES_CONSUMER "%.*s", (int)type->len, type->p);
    jq_args_t *a = &t->args;
    jq_args_reset(a);
    jq_args_str(a, "XCLAIM");
    jq_args_str(a, t->env.queues[q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, owner);
    jq_args_str(a, "0");
    jq_args_str(a, entry_id);
    jq_args_str(a, "IDLE");
    jq_args_ll(a, handback_idle(t->env.opt));
    jq_args_str(a, "RETRYCOUNT");
    jq_args_ll(a, deliveries > 0 ? deliveries - 1 : 0);
    jq_args_str(a, "JUSTID");
    jq_rconn_args(t->env.conn, a, NULL, NULL);
    jq_args_reset(a);
}

/* Whether an entry of type (and of that id) waits rather than dies: the
 * set not read yet, a live worker handles the type, or the entry is
 * younger than the grace. */
static int waits(const jq_types_t *t, int q, const jq_str_t *type, const char *entry_id,
                 int64_t now) {
    q = jq_queue_base(t->env.queues, q); /* a level shares its queue's set */
    return !t->loaded[q] || live_elsewhere(t, q, type) ||
           age_ms(entry_id, now) < jq_types_grace_ms(t);
}

int jq_types_foreign(jq_types_t *t, int q, const jq_str_t *type, const char *entry_id,
                     long long deliveries, int64_t now) {
    if (!waits(t, q, type, entry_id, now)) return 0;
    hand_back(t, q, type, entry_id, deliveries);
    return 1;
}

int jq_types_leave(const jq_types_t *t, int q, const char *id, const char *consumer, size_t clen,
                   int64_t now) {
    size_t plen = sizeof(JQ_TYPES_CONSUMER) - 1;
    if (clen <= plen || memcmp(consumer, JQ_TYPES_CONSUMER, plen) != 0) return 0;
    jq_str_t type = {consumer + plen, clen - plen};
    if (jq_registry_find(t->reg, type.p, type.len)) return 0; /* ours to run */
    return waits(t, q, &type, id, now);
}
