/* Queue health: broken queues out of the reads. See qhealth.h. */

#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "log.h"
#include "qhealth.h"

typedef struct probe {
    jq_qhealth_stage_t *qh;
    int q;
} probe_t;

void jq_qhealth_init(jq_qhealth_stage_t *qh, const jq_stage_env_t *env, jq_fetch_t *fetch) {
    qh->env = *env;
    qh->fetch = fetch;
}

int jq_redis_refuses(const char *err) {
    static const char *const codes[] = {"OOM",   "READONLY",   "MISCONF",   "LOADING",
                                        "BUSY ", "MASTERDOWN", "NOREPLICAS"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(err, codes[i], strlen(codes[i])) == 0) return 1;
    return 0;
}

static int is_key_error(const char *err) {
    return strncmp(err, "WRONGTYPE", 9) == 0 || strncmp(err, "NOGROUP", 7) == 0;
}

/* <p>:{q}:broken, so that `jobq stats` (any client) can tell. */
static void publish(jq_qhealth_stage_t *qh, jq_queue_t *q) {
    char key[JQ_KEY_MAX], since[24], ttl[24];
    jq_key(key, sizeof(key), qh->env.opt->prefix, q->name, "broken");
    snprintf(since, sizeof(since), "%lld", (long long)q->health.since_ms);
    snprintf(ttl, sizeof(ttl), "%d", 3 * JQ_QHEALTH_RETRY_MS);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HSET");
    jq_args_str(&a, key);
    jq_args_str(&a, "error");
    jq_args_str(&a, q->health.error);
    jq_args_str(&a, "since");
    jq_args_str(&a, since);
    jq_args_str(&a, "worker");
    jq_args_str(&a, qh->env.worker_id);
    jq_rconn_args(qh->env.conn, &a, NULL, NULL);
    jq_args_reset(&a);
    jq_args_str(&a, "PEXPIRE");
    jq_args_str(&a, key);
    jq_args_str(&a, ttl);
    jq_rconn_args(qh->env.conn, &a, NULL, NULL);
    jq_args_destroy(&a);
}

static void healthy(jq_qhealth_stage_t *qh, jq_queue_t *q, int created) {
    jq_qhealth_t *h = &q->health;
    if (h->state == JQ_QUEUE_BROKEN && h->refused) {
        jq_info("queue %s: redis takes writes again; served again after %lld ms", q->name,
                (long long)(jq_now_ms() - h->since_ms));
    } else if (h->state == JQ_QUEUE_BROKEN) {
        jq_info("queue %s: served again%s", q->name,
                created ? " (its group made anew from id 0)" : "");
        char key[JQ_KEY_MAX];
        jq_key(key, sizeof(key), qh->env.opt->prefix, q->name, "broken");
        jq_args_t a;
        jq_args_init(&a);
        jq_args_str(&a, "DEL");
        jq_args_str(&a, key);
        jq_rconn_args(qh->env.conn, &a, NULL, NULL);
        jq_args_destroy(&a);
    } else if (created) {
        /* The stream or its group vanished under us: made again from id
         * 0, so entries added since are read, none skipped. */
        jq_warn("queue %s: its stream or group was gone; made again from id 0", q->name);
    }
    h->state = JQ_QUEUE_OK;
    h->refused = 0;
    h->error[0] = '\0';
}

/* Redis refuses every write (a read-only replica, out of memory...): the
 * queue is fine, and the reads (XREADGROUP writes the group) wait. Said
 * once per episode, as what it is; asked again soon, so that the reads
 * resume at once when Redis takes writes again. */
static void refused(jq_qhealth_t *h, const char *qname, const char *err, int64_t now) {
    if (h->state != JQ_QUEUE_BROKEN || !h->refused) {
        jq_warn("redis refuses writes (%s): queue %s is fine, but not read until redis takes "
                "writes again; asked every %d ms",
                err, qname, JQ_QHEALTH_REFUSED_RETRY_MS);
        h->since_ms = now;
    }
    h->state = JQ_QUEUE_BROKEN;
    h->refused = 1;
    snprintf(h->error, sizeof(h->error), "%s", err);
    h->next_probe_ms = now + JQ_QHEALTH_REFUSED_RETRY_MS;
}

static void broken(jq_qhealth_stage_t *qh, jq_queue_t *q, const char *err) {
    jq_qhealth_t *h = &q->health;
    int64_t now = jq_now_ms();
    if (jq_redis_refuses(err)) {
        refused(h, q->name, err, now);
        return;
    }
    if (h->state != JQ_QUEUE_BROKEN || h->refused) {
        /* Once per episode; the retries are silent. */
        jq_error("queue %s is broken: %s; left out of reads, retried every %d ms, other queues "
                 "served as usual",
                 q->name, err, JQ_QHEALTH_RETRY_MS);
        h->since_ms = now;
    }
    h->state = JQ_QUEUE_BROKEN;
    h->refused = 0;
    snprintf(h->error, sizeof(h->error), "%s", err);
    h->next_probe_ms = now + JQ_QHEALTH_RETRY_MS;
    publish(qh, q);
}

static void on_probe(redisAsyncContext *ac, void *rp, void *priv) {
    probe_t *p = priv;
    jq_qhealth_stage_t *qh = p->qh;
    jq_queue_t *q = &qh->env.queues[p->q];
    redisReply *r = rp;
    free(p);
    q->health.probing = 0;
    if (!r || *qh->env.stopping) return; /* lost: probed again once back (tick) */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        broken(qh, q, r->str);
    else
        healthy(qh, q, r->type != REDIS_REPLY_ERROR);
    /* A read held back for the probes may go now, without the broken. */
    jq_fetch_retry(qh->fetch);
}

static void probe(jq_qhealth_stage_t *qh, int q) {
    jq_qhealth_t *h = &qh->env.queues[q].health;
    if (h->probing) return;
    probe_t *p = malloc(sizeof(*p));
    if (!p) return; /* probed again at the next tick */
    p->qh = qh;
    p->q = q;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "XGROUP");
    jq_args_str(&a, "CREATE");
    jq_args_str(&a, qh->env.queues[q].stream);
    jq_args_str(&a, JQ_GROUP);
    jq_args_str(&a, "0");
    jq_args_str(&a, "MKSTREAM");
    if (jq_rconn_args(qh->env.conn, &a, on_probe, p) == 0)
        h->probing = 1;
    else
        free(p);
    jq_args_destroy(&a);
}

void jq_qhealth_read_failed(jq_qhealth_stage_t *qh, const char *err) {
    int n = 0;
    for (int q = 0; q < *qh->env.nqueues; q++) {
        jq_qhealth_t *h = &qh->env.queues[q].health;
        if (h->state != JQ_QUEUE_OK || qh->env.queues[q].paused) continue;
        h->state = JQ_QUEUE_SUSPECT;
        probe(qh, q);
        n++;
    }
    /* Redis refusing writes is said by the probes, as what it is. */
    if (!is_key_error(err) && !jq_redis_refuses(err))
        jq_error("XREADGROUP: %s (checking each of %d queues)", err, n);
}

void jq_qhealth_key_error(jq_qhealth_stage_t *qh, int q, const char *err) {
    if (!is_key_error(err)) return;
    jq_qhealth_t *h = &qh->env.queues[q].health;
    if (h->state == JQ_QUEUE_OK) h->state = JQ_QUEUE_SUSPECT;
    if (h->state == JQ_QUEUE_SUSPECT) probe(qh, q);
}

void jq_qhealth_tick(jq_qhealth_stage_t *qh, int64_t now) {
    for (int q = 0; q < *qh->env.nqueues; q++) {
        jq_qhealth_t *h = &qh->env.queues[q].health;
        /* A suspect whose probe was lost with the connection, or a broken
         * queue that is due. */
        if ((h->state == JQ_QUEUE_SUSPECT && !h->probing) ||
            (h->state == JQ_QUEUE_BROKEN && now >= h->next_probe_ms)) {
            if (h->state == JQ_QUEUE_BROKEN)
                h->next_probe_ms =
                    now + (h->refused ? JQ_QHEALTH_REFUSED_RETRY_MS : JQ_QHEALTH_RETRY_MS);
            probe(qh, q);
        }
    }
}
