/* Enqueueing (PROTOCOL §1, §2): one XADD, or a MULTI when the job needs
 * more than one key to appear at once (payload chunks, a delayed job's hash
 * and schedule entry, the cleanup of an earlier job's result). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client_int.h"
#include "codec.h"
#include "job.h"

/* How many chunk bytes one RPUSH carries at most: keeps each command's
 * buffer small next to the payload while needing few commands. */
#define RPUSH_BATCH_BYTES (4 * 1024 * 1024)

void jq_enqueue_opts_init(jq_enqueue_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->result_ttl = -1;
}

int jq_client_gen_id(char *out, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[8];
    if (cap < 2 * sizeof(raw) + 1) return -1;
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) return -1;
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * sizeof(raw)] = '\0';
    return 0;
}

/* Rejects what a consumer would dead-letter anyway, before it is sent:
 * the producer is the one who can still fix it. */
static int check_enqueue(const char *type, const char *payload, size_t len,
                         const jq_enqueue_opts_t *o, const char *queue,
                         char *err, size_t errlen) {
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    if (o->id && jq_check_name("job id", o->id, err, errlen) < 0) return -1;
    if (!type || !type[0]) {
        jq_seterr(err, errlen, "job type is empty");
        return -1;
    }
    if (o->max_attempts < 0 || o->max_attempts > 1000000 ||
        o->timeout_ms < 0 || o->delay_ms < 0 || o->at_ms < 0) {
        jq_seterr(err, errlen, "bad enqueue option: max_attempts must be "
                               "1..1000000, delays and timeouts >= 0");
        return -1;
    }
    if (!payload) return 0;
    if (o->enc_json) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        int rc = jq_codec_json_to_msgpack(payload, len, &sb, err, errlen);
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    return jq_codec_check_msgpack(payload, len, err, errlen);
}

/* Appends the job's fields (§1) to a: as XADD fields or HSET pairs alike. */
static void add_fields(jq_args_t *a, const char *type, const char *payload,
                       size_t len, size_t nchunks, const char *id,
                       const jq_enqueue_opts_t *o) {
    jq_args_str(a, "type");
    jq_args_str(a, type);
    if (nchunks) {
        jq_args_str(a, "chunks");
        jq_args_ll(a, (long long)nchunks);
        jq_args_str(a, "size");
        jq_args_ll(a, (long long)len);
    } else if (payload) {
        jq_args_str(a, "payload");
        jq_args_add(a, payload, len);
    }
    if (payload && o->enc_json) {
        jq_args_str(a, "enc");
        jq_args_str(a, "json");
    }
    if (id[0]) {
        jq_args_str(a, "id");
        jq_args_str(a, id);
    }
    if (o->max_attempts > 0) {
        jq_args_str(a, "max_attempts");
        jq_args_ll(a, o->max_attempts);
    }
    if (o->timeout_ms > 0) {
        jq_args_str(a, "timeout_ms");
        jq_args_ll(a, o->timeout_ms);
    }
    if (o->result_ttl >= 0) {
        jq_args_str(a, "result_ttl");
        jq_args_ll(a, o->result_ttl);
    }
}

/* Queues the commands of one enqueue on c (replies read by the caller):
 * SADD, then either a bare XADD or MULTI ... EXEC. Sets *ncmds to the
 * number of commands and *job_at to the index of the XADD (whose reply is
 * the entry id), counted inside EXEC's array when in a MULTI. */
static int append_enqueue(jq_client_t *c, jq_args_t *a, const char *queue,
                          const char *type, const char *payload, size_t len,
                          const jq_enqueue_opts_t *o, const char *id,
                          long long due, size_t chunk, int *ncmds,
                          int *in_multi, int *job_at, char *err,
                          size_t errlen) {
    size_t nchunks = payload && len > chunk ? (len + chunk - 1) / chunk : 0;
    int multi = nchunks || due || o->id;
    int n = 0, inner = 0;
#define SEND()                                                     \
    do {                                                           \
        if (jq_client_append(c, a, err, errlen) < 0) goto fail;    \
        n++;                                                       \
        jq_args_reset(a);                                          \
    } while (0)

    char queues[JQ_KEY_MAX];
    jq_key_global(queues, sizeof(queues), c->prefix, "queues");
    jq_args_str(a, "SADD");
    jq_args_str(a, queues);
    jq_args_str(a, queue);
    SEND();
    if (multi) {
        jq_args_str(a, "MULTI");
        SEND();
    }
    if (o->id) {
        /* A reused id must not let a waiter see the last job's result. */
        jq_args_str(a, "DEL");
        jq_args_key(a, c, queue, "result", id);
        char chunks[JQ_CLIENT_ID_LEN + 16];
        snprintf(chunks, sizeof(chunks), "%s:chunks", id);
        jq_args_key(a, c, queue, "result", chunks);
        jq_args_key(a, c, queue, "notify", id);
        SEND();
        inner++;
    }
    if (nchunks) {
        jq_args_str(a, "DEL");
        jq_args_key(a, c, queue, "payload", id);
        SEND();
        inner++;
        size_t per = RPUSH_BATCH_BYTES / chunk ? RPUSH_BATCH_BYTES / chunk : 1;
        for (size_t i = 0; i < nchunks; i += per) {
            jq_args_str(a, "RPUSH");
            jq_args_key(a, c, queue, "payload", id);
            for (size_t j = i; j < nchunks && j < i + per; j++) {
                size_t off = j * chunk;
                jq_args_add(a, payload + off, len - off < chunk ? len - off : chunk);
            }
            SEND();
            inner++;
        }
    }
    if (due) {
        /* A stale hash of the same id (an old dead job) must not lend the
         * new job its error or attempt fields. */
        jq_args_str(a, "DEL");
        jq_args_key(a, c, queue, "job", id);
        SEND();
        inner++;
        jq_args_str(a, "HSET");
        jq_args_key(a, c, queue, "job", id);
        add_fields(a, type, payload, len, nchunks, id, o);
        SEND();
        inner++;
        jq_args_str(a, "ZADD");
        jq_args_key(a, c, queue, "scheduled", NULL);
        jq_args_ll(a, due);
        jq_args_str(a, id);
        SEND();
        *job_at = -1;
        inner++;
    } else {
        jq_args_str(a, "XADD");
        jq_args_key(a, c, queue, "stream", NULL);
        jq_args_str(a, "*");
        add_fields(a, type, payload, len, nchunks, id, o);
        SEND();
        *job_at = multi ? inner : 0;
        inner++;
    }
    if (multi) {
        jq_args_str(a, "EXEC");
        SEND();
    }
#undef SEND
    *ncmds = n;
    *in_multi = multi;
    return 0;
fail:
    *ncmds = n;
    *in_multi = multi;
    return -1;
}

/* Reads the n replies of append_enqueue; copies the entry id when the job
 * id is the XADD's. Reads every reply even after an error, so that the
 * connection stays in step. */
static int read_enqueue(jq_client_t *c, int n, int multi, int job_at,
                        char *id, size_t id_cap, char *err, size_t errlen) {
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char why[JQ_KEY_MAX];
        redisReply *r = jq_client_reply(c, why, sizeof(why));
        if (!r) {
            jq_seterr(err, errlen, "%s", why);
            return -1;
        }
        const redisReply *xadd = NULL;
        if (jq_reply_ok(r, why, sizeof(why)) < 0) {
            if (rc == 0) jq_seterr(err, errlen, "enqueue failed: %s", why);
            rc = -1;
        } else if (multi && i == n - 1) {
            if (r->type != REDIS_REPLY_ARRAY) {
                if (rc == 0) jq_seterr(err, errlen, "enqueue failed: transaction aborted");
                rc = -1;
            } else {
                for (size_t k = 0; k < r->elements; k++)
                    if (rc == 0 && jq_reply_ok(r->element[k], why, sizeof(why)) < 0) {
                        jq_seterr(err, errlen, "enqueue failed: %s", why);
                        rc = -1;
                    }
                if (job_at >= 0 && (size_t)job_at < r->elements)
                    xadd = r->element[job_at];
            }
        } else if (!multi && i == 1) {
            xadd = r;
        }
        if (rc == 0 && xadd && !id[0]) {
            if (xadd->type != REDIS_REPLY_STRING || xadd->len >= id_cap) {
                jq_seterr(err, errlen, "enqueue failed: odd XADD reply");
                rc = -1;
            } else {
                memcpy(id, xadd->str, xadd->len);
                id[xadd->len] = '\0';
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

int jq_client_enqueue(jq_client_t *c, const char *type, const char *payload,
                      size_t len, const jq_enqueue_opts_t *o, char *id_out,
                      size_t id_cap, char *err, size_t errlen) {
    jq_enqueue_opts_t defaults;
    if (!o) {
        jq_enqueue_opts_init(&defaults);
        o = &defaults;
    }
    const char *queue = o->queue ? o->queue : JQ_QUEUE_DEFAULT;
    if (id_cap < JQ_CLIENT_ID_LEN) {
        jq_seterr(err, errlen, "id buffer too small");
        return -1;
    }
    if (check_enqueue(type, payload, len, o, queue, err, errlen) < 0)
        return -1;
    size_t chunk = o->chunk_size ? o->chunk_size : JQ_CHUNK_SIZE_DEFAULT;
    long long due = o->at_ms > 0 ? o->at_ms
                    : o->delay_ms > 0 ? (long long)jq_now_ms() + o->delay_ms
                                      : 0;
    char id[JQ_CLIENT_ID_LEN] = "";
    if (o->id) {
        snprintf(id, sizeof(id), "%s", o->id);
    } else if (due || (payload && len > chunk)) {
        /* The hash, the schedule entry and the chunk list are keyed by
         * the id, so it must exist before the stream entry does. */
        if (jq_client_gen_id(id, sizeof(id)) < 0) {
            jq_seterr(err, errlen, "cannot generate a job id: no randomness");
            return -1;
        }
    }

    jq_args_t a;
    jq_args_init(&a);
    int n = 0, multi = 0, job_at = -1;
    int rc = append_enqueue(c, &a, queue, type, payload, len, o, id, due,
                            chunk, &n, &multi, &job_at, err, errlen);
    jq_args_destroy(&a);
    if (rc < 0) {
        /* Half a pipeline may sit in the output buffer: start afresh. */
        if (c->ctx) c->ctx->err = REDIS_ERR_OTHER;
        return -1;
    }
    if (read_enqueue(c, n, multi, job_at, id, sizeof(id), err, errlen) < 0)
        return -1;
    snprintf(id_out, id_cap, "%s", id);
    return 0;
}
