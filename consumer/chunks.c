/* Chunked payloads (PROTOCOL §1): the list <p>:{q}:payload:<id> is read a
 * few chunks per round trip and each chunk is copied once, into msgpack-c's
 * streaming unpacker, whose buffer the decoded object then references. So a
 * 64 MiB payload sits in memory once, and a read never pulls more than
 * CHUNKS_PER_READ chunks at a time into hiredis. */

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define CHUNKS_PER_READ 8

typedef struct loader {
    jq_worker_t *w;
    jq_run_t *r;
    msgpack_unpacker up;
    msgpack_sbuffer json;   /* enc json: the text, converted at the end */
    long long next;         /* index of the next chunk to read */
    long long bytes;        /* bytes received so far */
    char key[JQ_KEY_MAX];
} loader_t;

static void finish(loader_t *l, const char *err) {
    jq_worker_t *w = l->w;
    jq_run_t *r = l->r;
    char why[JQ_ERR_LEN];
    w->loading--;
    if (!err) {
        msgpack_unpacked res;
        msgpack_unpacked_init(&res);
        if (r->job.enc == JQ_ENC_JSON) {
            msgpack_sbuffer_init(&r->jbuf);
            if (jq_codec_json_to_msgpack(l->json.data, l->json.size, &r->jbuf, why, sizeof(why)) != 0)
                err = why;
            else {
                msgpack_unpacker_reserve_buffer(&l->up, r->jbuf.size);
                memcpy(msgpack_unpacker_buffer(&l->up), r->jbuf.data, r->jbuf.size);
                msgpack_unpacker_buffer_consumed(&l->up, r->jbuf.size);
                msgpack_sbuffer_destroy(&r->jbuf);
                memset(&r->jbuf, 0, sizeof(r->jbuf));
            }
        }
        if (!err) {
            msgpack_unpack_return rc = msgpack_unpacker_next(&l->up, &res);
            size_t left = l->up.used - l->up.off;
            if (rc == MSGPACK_UNPACK_SUCCESS && left == 0) {
                r->zone = msgpack_unpacked_release_zone(&res);
                r->payload = res.data;
            } else if (rc == MSGPACK_UNPACK_SUCCESS) {
                snprintf(why, sizeof(why),
                         "payload is not valid msgpack: %zu bytes left after the object (payload has %lld)",
                         left, l->bytes);
                err = why;
            } else if (rc == MSGPACK_UNPACK_CONTINUE) {
                snprintf(why, sizeof(why), "payload is not valid msgpack: truncated (%lld bytes)", l->bytes);
                err = why;
            } else {
                snprintf(why, sizeof(why), "payload is not valid msgpack: parse error");
                err = why;
            }
        }
        msgpack_unpacked_destroy(&res);
    }
    msgpack_unpacker_destroy(&l->up);
    msgpack_sbuffer_destroy(&l->json);
    free(l);
    if (err) {
        jq_fetch_dead(w, r, err);
    } else {
        jq_worker_run_start(w, r);
    }
    jq_fetch_kick(w);
}

static void read_more(loader_t *l);

static void on_range(redisAsyncContext *ac, void *rp, void *priv) {
    loader_t *l = priv;
    redisReply *reply = rp;
    char why[JQ_ERR_LEN];
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* Lost the connection: leave the entry pending (it runs again
         * elsewhere, or here after reclaim) and drop our half-read copy. */
        jq_warn("reading chunks of job %s: %s", l->r->job.id, reply ? reply->str : "connection lost");
        l->w->loading--;
        msgpack_unpacker_destroy(&l->up);
        msgpack_sbuffer_destroy(&l->json);
        jq_run_free(l->r);
        free(l);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *c = reply->element[i];
        l->bytes += (long long)c->len;
        if (l->bytes > l->r->job.size) {
            snprintf(why, sizeof(why), "size mismatch: chunks hold more than size %lld bytes",
                     l->r->job.size);
            finish(l, why);
            return;
        }
        if (l->r->job.enc == JQ_ENC_JSON) {
            msgpack_sbuffer_write(&l->json, c->str, c->len);
        } else {
            if (!msgpack_unpacker_reserve_buffer(&l->up, c->len)) {
                finish(l, "out of memory reading chunks");
                return;
            }
            memcpy(msgpack_unpacker_buffer(&l->up), c->str, c->len);
            msgpack_unpacker_buffer_consumed(&l->up, c->len);
        }
    }
    l->next += (long long)reply->elements;
    if (reply->elements < CHUNKS_PER_READ && l->next < l->r->job.chunks) {
        snprintf(why, sizeof(why), "chunk list has %lld elements, chunks says %lld", l->next,
                 l->r->job.chunks);
        finish(l, why);
        return;
    }
    if (l->next >= l->r->job.chunks) {
        if (l->bytes != l->r->job.size) {
            snprintf(why, sizeof(why), "size mismatch: chunks hold %lld bytes, size says %lld", l->bytes,
                     l->r->job.size);
            finish(l, why);
        } else {
            finish(l, NULL);
        }
        return;
    }
    read_more(l);
}

static void read_more(loader_t *l) {
    long long last = l->next + CHUNKS_PER_READ - 1;
    if (last >= l->r->job.chunks) last = l->r->job.chunks - 1;
    if (jq_rconn_cmd(&l->w->rwrite, on_range, l, "LRANGE %s %lld %lld", l->key, l->next, last) != 0)
        on_range(NULL, NULL, l);
}

static void on_llen(redisAsyncContext *ac, void *rp, void *priv) {
    loader_t *l = priv;
    redisReply *reply = rp;
    char why[JQ_ERR_LEN];
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        on_range(ac, NULL, l);
        return;
    }
    if (reply->integer == 0) {
        snprintf(why, sizeof(why), "chunk list %.200s is missing", l->key);
        finish(l, why);
    } else if (reply->integer != l->r->job.chunks) {
        snprintf(why, sizeof(why), "chunk list has %lld elements, chunks says %lld",
                 (long long)reply->integer, l->r->job.chunks);
        finish(l, why);
    } else {
        read_more(l);
    }
}

int jq_chunks_load(jq_worker_t *w, jq_run_t *r) {
    loader_t *l = calloc(1, sizeof(*l));
    if (!l || !msgpack_unpacker_init(&l->up, MSGPACK_UNPACKER_INIT_BUFFER_SIZE)) {
        free(l);
        jq_fetch_dead(w, r, "out of memory reading chunks");
        return 0;
    }
    l->w = w;
    l->r = r;
    msgpack_sbuffer_init(&l->json);
    jq_key_id(l->key, sizeof(l->key), w->opt->prefix, w->queues[r->q].name, "payload", r->job.id);
    w->loading++;
    if (jq_rconn_cmd(&w->rwrite, on_llen, l, "LLEN %s", l->key) != 0) on_llen(NULL, NULL, l);
    return 0;
}
