/* Batches (PROTOCOL §12): create, seal, show, and the two steps a job of
 * a batch takes at enqueue (jq_batch_join, jq_batch_leave: jobq.c). Every
 * change to a batch is one EVAL of the shared script (common/batch.c). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_int.h"
#include "client_int.h"
#include "codec.h"
#include "job.h"

#define BATCH_QUEUE_MAX 100 /* so that "<queue>:<16 hex>:complete" is a valid job id */

/* The queue and name parts of a batch id. Returns 0 or -1 with err. */
static int split(const char *id, char *q, char *name, char *err, size_t errlen) {
    size_t ql, n = id ? strlen(id) : 0;
    if (!id || jq_batch_id_split(id, n, &ql) < 0) {
        jq_seterr(err, errlen, "bad batch id '%s' (want <queue>:<name>, as batch create prints)",
                  id ? id : "");
        return -1;
    }
    memcpy(q, id, ql);
    q[ql] = '\0';
    memcpy(name, id + ql + 1, n - ql - 1);
    name[n - ql - 1] = '\0';
    return 0;
}

/* EVAL of the batch script on batch id with op and its arguments. */
static redisReply *run_op(jq_client_t *c, const char *id, const char *const *argv, int argc,
                          char *err, size_t errlen) {
    char q[JQ_CLIENT_ID_LEN], name[JQ_CLIENT_ID_LEN];
    if (split(id, q, name, err, errlen) < 0) return NULL;
    char ended[JQ_CLIENT_ID_LEN + 8];
    snprintf(ended, sizeof(ended), "%s:ended", name);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVAL");
    jq_args_str(&a, jq_batch_lua);
    jq_args_str(&a, "3");
    jq_args_key(&a, c, q, "batch", name);
    jq_args_key(&a, c, q, "batch", ended);
    jq_args_key(&a, c, q, "stream", NULL);
    for (int i = 0; i < argc; i++) jq_args_str(&a, argv[i]);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    return r;
}

int jq_batch_join(jq_client_t *c, const char *id, int n, char *err, size_t errlen) {
    char count[24];
    snprintf(count, sizeof(count), "%d", n);
    const char *argv[] = {"add", count};
    redisReply *r = run_op(c, id, argv, 2, err, errlen);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

static int check_callback(const char *what, const char *type, const char *payload, char *err,
                          size_t errlen) {
    if (!type) return payload ? (jq_seterr(err, errlen, "%s payload without a type", what), -1) : 0;
    if (!jq_name_valid(type, strlen(type))) {
        jq_seterr(err, errlen, "bad %s type '%s'", what, type);
        return -1;
    }
    if (!payload) return 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char why[JQ_ERR_LEN];
    int rc = jq_codec_json_to_msgpack(payload, strlen(payload), &sb, why, sizeof(why));
    msgpack_sbuffer_destroy(&sb);
    if (rc < 0) jq_seterr(err, errlen, "%s payload: %s", what, why);
    return rc;
}

int jq_client_batch_create(jq_client_t *c, const jq_batch_opts_t *o, char *id_out, size_t id_cap,
                           char *err, size_t errlen) {
    jq_batch_opts_t none = {0};
    if (!o) o = &none;
    const char *queue = o->queue;
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    if (strlen(queue) > BATCH_QUEUE_MAX) {
        jq_seterr(err, errlen, "a batch's queue name has at most %d bytes", BATCH_QUEUE_MAX);
        return -1;
    }
    if (check_callback("on-complete", o->on_complete_type, o->on_complete_payload, err, errlen) <
            0 ||
        check_callback("on-success", o->on_success_type, o->on_success_payload, err, errlen) < 0)
        return -1;
    char name[JQ_CLIENT_ID_LEN], id[JQ_CLIENT_ID_LEN * 2], now[24];
    if (jq_client_gen_id(name, sizeof(name)) < 0) {
        jq_seterr(err, errlen, "cannot generate a batch id: no randomness");
        return -1;
    }
    snprintf(id, sizeof(id), "%s:%s", queue, name);
    if (id_cap <= strlen(id)) {
        jq_seterr(err, errlen, "id buffer too small");
        return -1;
    }
    jq_ll2str(now, (long long)jq_now_ms());
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HSET");
    jq_args_key(&a, c, queue, "batch", name);
    const char *fields[] = {"id",   id,  "queue",     queue, "total",  "0", "done",       "0",
                            "dead", "0", "cancelled", "0",   "sealed", "0", "created_at", now};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) jq_args_str(&a, fields[i]);
    const char *cb[][2] = {{"on_complete_type", o->on_complete_type},
                           {"on_complete_payload", o->on_complete_payload},
                           {"on_success_type", o->on_success_type},
                           {"on_success_payload", o->on_success_payload}};
    for (size_t i = 0; i < 4; i++)
        if (cb[i][1]) {
            jq_args_str(&a, cb[i][0]);
            jq_args_str(&a, cb[i][1]);
        }
    int rc = jq_client_do(c, &a, err, errlen);
    if (rc == 0) {
        /* Its callbacks' queue shows in `jobq stats`. */
        char queues[JQ_KEY_MAX];
        jq_key_global(queues, sizeof(queues), c->prefix, "queues");
        jq_args_str(&a, "SADD");
        jq_args_str(&a, queues);
        jq_args_str(&a, queue);
        rc = jq_client_do(c, &a, err, errlen);
    }
    jq_args_destroy(&a);
    if (rc == 0) snprintf(id_out, id_cap, "%s", id);
    return rc;
}

static void fill(jq_batch_t *b, const redisReply *h) {
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        long long *dst = jq_reply_is(f, "total")        ? &b->total
                         : jq_reply_is(f, "done")       ? &b->done
                         : jq_reply_is(f, "dead")       ? &b->dead
                         : jq_reply_is(f, "cancelled")  ? &b->cancelled
                         : jq_reply_is(f, "created_at") ? &b->created_at
                         : jq_reply_is(f, "fired")      ? &b->fired_at
                                                        : NULL;
        if (dst)
            jq_reply_ll(v, dst);
        else if (jq_reply_is(f, "sealed"))
            b->sealed = jq_reply_is(v, "1");
        else if (jq_reply_is(f, "queue") && v->type == REDIS_REPLY_STRING &&
                 v->len < sizeof(b->queue))
            memcpy(b->queue, v->str, v->len);
    }
    b->pending = b->total - b->done - b->dead - b->cancelled;
}

int jq_client_batch_show(jq_client_t *c, const char *id, jq_batch_t *b, char *err, size_t errlen) {
    char q[JQ_CLIENT_ID_LEN], name[JQ_CLIENT_ID_LEN];
    memset(b, 0, sizeof(*b));
    if (split(id, q, name, err, errlen) < 0) return -1;
    snprintf(b->id, sizeof(b->id), "%s", id);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HGETALL");
    jq_args_key(&a, c, q, "batch", name);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        jq_seterr(err, errlen, "no such batch: %s", id);
        rc = JQ_CLIENT_ENOTFOUND;
    } else {
        fill(b, r);
    }
    freeReplyObject(r);
    return rc;
}

int jq_client_batch_seal(jq_client_t *c, const char *id, jq_batch_t *b, char *err, size_t errlen) {
    const char *argv[] = {"seal"};
    redisReply *r = run_op(c, id, argv, 1, err, errlen);
    if (!r) return err && strstr(err, "no such batch") ? JQ_CLIENT_ENOTFOUND : -1;
    freeReplyObject(r);
    return b ? jq_client_batch_show(c, id, b, err, errlen) : 0;
}
