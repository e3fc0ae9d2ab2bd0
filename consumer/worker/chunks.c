/* Chunked payloads (PROTOCOL §1): the list <p>:{q}:payload:<id> is read
 * CHUNKS_PER_READ chunks per round trip, and each chunk is copied once, into
 * msgpack-c's streaming unpacker, whose buffer is sized to `size` up front
 * (so it never grows by doubling and copying) and which the decoded object
 * then references. So a 64 MiB payload sits in memory once, plus at most
 * one read's worth of chunks in hiredis.
 *
 * The unpacker runs once, when the last chunk is in, and only after the
 * whole payload passed the checker that inline payloads pass
 * (jq_codec_check_msgpack): msgpack-c reserves a container's elements by
 * the count its header announces, so a few bytes announcing 2^32 elements
 * would make it ask for gigabytes before it noticed the payload is
 * shorter (found for inline payloads by tests/fuzz/fuzz_msgpack; a chunk
 * list is no different). So a malformed payload is read to its end
 * (bounded by --max-payload) before it is dead-lettered, with the same
 * reason as an inline one.
 *
 * enc json cannot be streamed (json-c wants the whole text): the text is
 * gathered in a buffer of `size` bytes, turned into msgpack in the run's
 * jbuf and decoded from there, as an inline payload is. */

#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "codec.h"
#include "log.h"
#include "sentinel.h"
#include "chunks.h"
#include "fetch.h"

#define CHUNKS_PER_READ 8

typedef struct loader {
    jq_chunks_t *c;
    jq_run_t *r;
    msgpack_unpacker up; /* enc msgpack; valid once has_up is set */
    int has_up;
    msgpack_unpacked res; /* the object, once the unpacker finished one */
    const char *raw;      /* its bytes in the unpacker's buffer */
    size_t raw_len;
    msgpack_sbuffer json; /* enc json: the text, converted at the end */
    long long next;       /* index of the next chunk to read */
    long long bytes;      /* bytes received so far */
    int first_unsent;     /* the first LRANGE could not be sent */
    char err[JQ_ERR_LEN]; /* set by on_llen: the first read ends the load */
    char key[JQ_KEY_MAX];
} loader_t;

static void loader_free(loader_t *l) {
    if (l->has_up) msgpack_unpacker_destroy(&l->up);
    msgpack_unpacked_destroy(&l->res);
    msgpack_sbuffer_destroy(&l->json);
    free(l);
}

/* Ends the load: starts the run, or dead-letters it with err. The payload
 * object (when err is NULL) must be in l->res or already in the run. */
static void finish(loader_t *l, const char *err) {
    jq_chunks_t *c = l->c;
    jq_run_t *r = l->r;
    c->loading--;
    if (!err && l->res.zone) {
        /* The zone now owns the object and, through the unpacker's
         * reference count, the buffer its str/bin bytes point into: with
         * a str or bin at the top that buffer, which holds the payload's
         * bytes whole, surely lives as long as the object. */
        r->payload = l->res.data;
        r->zone = msgpack_unpacked_release_zone(&l->res);
        if (r->payload.type == MSGPACK_OBJECT_STR || r->payload.type == MSGPACK_OBJECT_BIN) {
            r->praw = l->raw;
            r->praw_len = l->raw_len;
        }
    }
    if (err) {
        jq_run_dead(r, err); /* before loader_free: err may be l->err */
        loader_free(l);
        jq_finish_add(c->finish, r);
    } else {
        loader_free(l);
        c->env.start(c->env.worker, r);
    }
    c->env.kick(c->env.worker);
}

/* The connection went away: leave the entry pending (it runs again
 * elsewhere, or here after reclaim) and drop the half-read copy. */
/* An error that says the server is no master now (a failover:
 * jq_sentinel_not_master) is an outage, not the job's fault: the run is
 * let go and its entry, still pending, runs again on the new master. */
static int not_master(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR && jq_sentinel_not_master(r->str, r->len) > 0;
}

static void abandon(loader_t *l, const char *why) {
    jq_warn("reading chunks of job %s: %s", l->r->job.id, why);
    l->c->loading--;
    jq_run_free(l->r);
    loader_free(l);
}

/* enc json, all chunks in: convert and decode like an inline payload. */
static void finish_json(loader_t *l) {
    char why[JQ_ERR_LEN];
    jq_run_t *r = l->r;
    /* The decoded object points into the run's jbuf, not into l->json. */
    r->job.has_payload = 1;
    r->job.payload.p = l->json.data;
    r->job.payload.len = l->json.size;
    int rc = jq_fetch_decode_payload(r, why, sizeof(why));
    r->job.payload.p = NULL;
    r->job.payload.len = 0;
    r->job.has_payload = 0;
    finish(l, rc == 0 ? NULL : why);
}

/* All chunks in: checks the payload, then unpacks it (the checker accepts
 * exactly what msgpack-c unpacks whole, so only memory can fail there).
 * Calls finish(). */
static void unpack_all(loader_t *l) {
    char why[JQ_ERR_LEN];
    const char *data = l->up.buffer + l->up.off;
    l->raw = data;
    l->raw_len = l->up.used - l->up.off;
    if (jq_codec_check_msgpack(data, l->up.used - l->up.off, why, sizeof(why)) != 0) {
        finish(l, why);
        return;
    }
    msgpack_unpack_return rc = msgpack_unpacker_next(&l->up, &l->res);
    if (rc == MSGPACK_UNPACK_SUCCESS && l->res.zone && l->up.used == l->up.off) {
        finish(l, NULL);
        return;
    }
    snprintf(why, sizeof(why), "out of memory decoding the payload (%lld bytes)", l->r->job.size);
    finish(l, why);
}

static int send_read(loader_t *l);
static void read_more(loader_t *l);

/* Copies the chunks of one LRANGE reply (an array) into the payload's
 * buffer. Returns 0, or -1 after ending the load (finish) with why. */
static int take_chunks(loader_t *l, const redisReply *reply) {
    jq_run_t *r = l->r;
    char why[JQ_ERR_LEN];
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *c = reply->element[i];
        if (c->type != REDIS_REPLY_STRING) {
            finish(l, "chunk list holds a non-string element");
            return -1;
        }
        /* Checked per chunk, so no chunk list can make us hold more than
         * `size` (itself bounded by --max-payload). */
        if (l->bytes + (long long)c->len > r->job.size) {
            snprintf(why, sizeof(why), "size mismatch: chunks hold more than size %lld bytes",
                     r->job.size);
            finish(l, why);
            return -1;
        }
        l->bytes += (long long)c->len;
        if (r->job.enc == JQ_ENC_JSON) {
            msgpack_sbuffer_write(&l->json, c->str, c->len);
        } else {
            /* Never grows: on_llen sized the buffer to `size`. */
            if (!msgpack_unpacker_reserve_buffer(&l->up, c->len)) {
                finish(l, "out of memory reading chunks");
                return -1;
            }
            memcpy(msgpack_unpacker_buffer(&l->up), c->str, c->len);
            msgpack_unpacker_buffer_consumed(&l->up, c->len);
        }
    }
    return 0;
}

static void on_range(redisAsyncContext *ac, void *rp, void *priv) {
    loader_t *l = priv;
    redisReply *reply = rp;
    jq_run_t *r = l->r;
    char why[JQ_ERR_LEN];
    if (!reply) {
        abandon(l, "connection lost");
        return;
    }
    if (l->err[0]) {
        finish(l, l->err);
        return;
    }
    if (not_master(reply)) {
        abandon(l, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        snprintf(why, sizeof(why), "reading chunk list %.100s: %.120s", l->key,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "not an array");
        finish(l, why);
        return;
    }
    if (take_chunks(l, reply) != 0) return;
    l->next += (long long)reply->elements;
    int last = l->next >= r->job.chunks;
    if (!last && reply->elements < CHUNKS_PER_READ) {
        /* The list shrank after LLEN. */
        snprintf(why, sizeof(why), "chunk list has %lld elements, chunks says %lld", l->next,
                 r->job.chunks);
        finish(l, why);
        return;
    }
    if (last && l->bytes != r->job.size) {
        snprintf(why, sizeof(why), "size mismatch: chunks hold %lld bytes, size says %lld",
                 l->bytes, r->job.size);
        finish(l, why);
        return;
    }
    if (!last)
        read_more(l);
    else if (r->job.enc == JQ_ENC_JSON)
        finish_json(l);
    else
        unpack_all(l);
}

static int send_read(loader_t *l) {
    long long last = l->next + CHUNKS_PER_READ - 1;
    if (last >= l->r->job.chunks) last = l->r->job.chunks - 1;
    jq_args_t *a = &l->c->args;
    jq_args_reset(a);
    jq_args_str(a, "LRANGE");
    jq_args_str(a, l->key);
    jq_args_ll(a, l->next);
    jq_args_ll(a, last);
    int rc = jq_rconn_args(l->c->env.conn, a, on_range, l);
    jq_args_reset(a);
    return rc;
}

static void read_more(loader_t *l) {
    if (send_read(l) != 0) abandon(l, "connection lost");
}

/* Sizes the buffer that will hold the whole payload, once the list is
 * known to be there: a missing list costs no allocation. */
static int alloc_buffer(loader_t *l) {
    size_t size = (size_t)l->r->job.size;
    if (l->r->job.enc == JQ_ENC_JSON) {
        l->json.data = jq_bigbuf_alloc(size);
        if (!l->json.data) return -1;
        l->json.alloc = size ? size : 1;
        return 0;
    }
    /* + room for the unpacker's reference counter, which it keeps at the
     * head of its buffer. */
    if (!msgpack_unpacker_init(&l->up, size + 2 * sizeof(_msgpack_atomic_counter_t))) return -1;
    l->has_up = 1;
    /* Untouched so far but for the counter: huge pages before the copies
     * fault it in (bigbuf.h). */
    jq_bigbuf_advise(l->up.buffer, l->up.used + l->up.free);
    return 0;
}

/* LLEN is sent together with the first LRANGE (one round trip, not two):
 * its verdict is kept in l->err for that read's callback, which always
 * comes next, to act on. */
static void on_llen(redisAsyncContext *ac, void *rp, void *priv) {
    loader_t *l = priv;
    redisReply *reply = rp;
    if (l->first_unsent) {
        abandon(l, "connection lost");
        return;
    }
    if (!reply || not_master(reply)) return; /* the read's callback, next, acts on it */
    if (reply->type != REDIS_REPLY_INTEGER) {
        /* WRONGTYPE, say: a clear dead letter, not a pending entry that
         * would be delivered again and again. */
        snprintf(l->err, sizeof(l->err), "reading chunk list %.100s: %.120s", l->key,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    } else if (reply->integer == 0) {
        snprintf(l->err, sizeof(l->err), "chunk list %.200s is missing", l->key);
    } else if (reply->integer != l->r->job.chunks) {
        snprintf(l->err, sizeof(l->err), "chunk list has %lld elements, chunks says %lld",
                 (long long)reply->integer, l->r->job.chunks);
    } else if (alloc_buffer(l) != 0) {
        snprintf(l->err, sizeof(l->err), "out of memory for a %lld-byte payload", l->r->job.size);
    }
}

void jq_chunks_init(jq_chunks_t *c, const jq_stage_env_t *env, jq_finish_t *finish) {
    memset(c, 0, sizeof(*c));
    c->env = *env;
    c->finish = finish;
    jq_args_init(&c->args);
}

void jq_chunks_destroy(jq_chunks_t *c) { jq_args_destroy(&c->args); }

int jq_chunks_load(jq_chunks_t *c, jq_run_t *r) {
    /* job.c has checked size against --max-payload already: nothing of an
     * oversized payload is read. */
    loader_t *l = calloc(1, sizeof(*l));
    if (!l) {
        jq_run_dead(r, "out of memory reading chunks");
        jq_finish_add(c->finish, r);
        return 0;
    }
    l->c = c;
    l->r = r;
    msgpack_unpacked_init(&l->res);
    msgpack_sbuffer_init(&l->json);
    jq_key_id(l->key, sizeof(l->key), c->env.opt->prefix, c->env.queues[r->q].name, "payload",
              r->job.id);
    c->loading++;
    jq_args_t *a = &c->args;
    jq_args_reset(a);
    jq_args_str(a, "LLEN");
    jq_args_str(a, l->key);
    int rc = jq_rconn_args(c->env.conn, a, on_llen, l);
    jq_args_reset(a);
    if (rc != 0) {
        abandon(l, "connection lost");
        return 0;
    }
    if (send_read(l) != 0) l->first_unsent = 1; /* on_llen abandons it */
    return 0;
}
