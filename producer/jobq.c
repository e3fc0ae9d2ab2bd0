/* Enqueueing (PROTOCOL §1, §2): one XADD, or a MULTI when the job needs
 * more than one key to appear at once (payload chunks, a delayed job's hash
 * and schedule entry, the cleanup of an earlier job's result). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client_int.h"
#include "codec.h"
#include "batch_int.h"
#include "job.h"
#include "unique.h"

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
                         const jq_enqueue_opts_t *o, const char *queue, char *err, size_t errlen) {
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    if (o->id && jq_check_name("job id", o->id, err, errlen) < 0) return -1;
    if (!type || !type[0]) {
        jq_seterr(err, errlen, "job type is empty");
        return -1;
    }
    if (o->max_attempts < 0 || o->max_attempts > 1000000 || o->timeout_ms < 0 || o->delay_ms < 0 ||
        o->at_ms < 0) {
        jq_seterr(err, errlen,
                  "bad enqueue option: max_attempts must be "
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

/* One enqueue's plan: what it writes, and where the entry id comes back. */
typedef struct enqueue {
    const char *queue, *type, *payload;
    size_t len;
    const jq_enqueue_opts_t *o;
    const char *id;        /* "" when the stream entry's id is the job's */
    long long due;         /* ms since the epoch; 0: ready now */
    size_t chunk;          /* payload bytes per chunk */
    size_t nchunks;        /* 0: the payload goes inline */
    int multi;             /* more than one key must appear at once */
    int notify;            /* JQ_NOTIFY: the entry carries `notify 1` */
    int xadd_at;           /* the XADD's place in EXEC's reply when multi; -1: none */
    jq_enqueue_ctl_t *ctl; /* job control (unique, batch); NULL: none */
    jq_prio_t prio;        /* JQ_HIGH, JQ_LOW: the level's stream (or field) */
} enqueue_t;

/* Appends the job's fields (§1) to a: as XADD fields or HSET pairs alike. */
static void add_fields(jq_args_t *a, const enqueue_t *e) {
    const jq_enqueue_opts_t *o = e->o;
    jq_args_str(a, "type");
    jq_args_str(a, e->type);
    if (e->nchunks) {
        jq_args_str(a, "chunks");
        jq_args_ll(a, (long long)e->nchunks);
        jq_args_str(a, "size");
        jq_args_ll(a, (long long)e->len);
    } else if (e->payload) {
        jq_args_str(a, "payload");
        jq_args_add(a, e->payload, e->len);
    }
    if (e->payload && o->enc_json) {
        jq_args_str(a, "enc");
        jq_args_str(a, "json");
    }
    if (e->id[0]) {
        jq_args_str(a, "id");
        jq_args_str(a, e->id);
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
    if (e->notify) {
        jq_args_str(a, "notify");
        jq_args_str(a, "1");
    }
    if (e->ctl && e->ctl->batch) {
        jq_args_str(a, "batch");
        jq_args_str(a, e->ctl->batch);
    }
    if (e->due && e->prio != JQ_PRIO_NORMAL) {
        /* A delayed job's hash: promotion puts it into its level's
         * stream (§2). A ready one goes there at once, field-less. */
        jq_args_str(a, "priority");
        jq_args_str(a, jq_prio_name(e->prio));
    }
}

/* A unique job (PROTOCOL §10): the script takes the key and adds the
 * entry (or the delayed job's hash and schedule entry) in one step. */
static void send_unique(jq_pipe_t *p, const enqueue_t *e, char *err, size_t errlen) {
    jq_args_str(&p->a, "EVAL");
    jq_args_str(&p->a, jq_unique_enqueue_lua);
    jq_args_str(&p->a, e->due ? "4" : "2");
    jq_args_key(&p->a, p->c, e->queue, "unique", e->ctl->unique);
    jq_args_key(&p->a, p->c, e->queue, jq_prio_stream(e->prio), NULL);
    if (e->due) {
        jq_args_key(&p->a, p->c, e->queue, "job", e->id);
        jq_args_key(&p->a, p->c, e->queue, "scheduled", NULL);
    }
    jq_args_str(&p->a, e->ctl->unique);
    jq_args_ll(&p->a, e->ctl->unique_for_ms > 0 ? e->ctl->unique_for_ms : 0);
    jq_args_ll(&p->a, e->due);
    add_fields(&p->a, e);
    jq_pipe_send(p, err, errlen);
}

void jq_enqueue_fields(jq_args_t *a, const char *type, const char *payload, size_t len,
                       const jq_enqueue_opts_t *o) {
    enqueue_t e = {NULL, type, payload, len, o, "", 0, 0, 0, 0, 0, -1, NULL, JQ_PRIO_NORMAL};
    add_fields(a, &e);
}

int jq_enqueue_check(const char *type, const char *payload, size_t len, const jq_enqueue_opts_t *o,
                     const char *queue, char *err, size_t errlen) {
    return check_enqueue(type, payload, len, o, queue, err, errlen);
}

/* How long a chunk list lives before its job's MULTI PERSISTs it: a
 * producer that dies between the RPUSHes and that MULTI leaves the list
 * this long, not forever. Set again after each RPUSH, so only a producer
 * stalled this long between two of them loses it (the consumer then
 * dead-letters the job: chunk list missing or short). */
#define CHUNK_LIST_TTL_MS "60000"

static void send_chunk_ttl(jq_pipe_t *p, const enqueue_t *e, char *err, size_t errlen) {
    jq_args_str(&p->a, "PEXPIRE");
    jq_args_key(&p->a, p->c, e->queue, "payload", e->id);
    jq_args_str(&p->a, CHUNK_LIST_TTL_MS);
    jq_pipe_send(p, err, errlen);
}

/* The chunk list, afresh, before the job's MULTI (docs/PROTOCOL.md §1:
 * Redis keeps every argument queued in a MULTI until EXEC, which cost it
 * 3-5x the plain RPUSHes). The first chunk goes in a small MULTI with the
 * DEL and the TTL, so the list never exists without one; then RPUSHes of
 * a few MiB each, written from the payload itself. The job's MULTI
 * PERSISTs the list before its XADD, and is sent only once every reply
 * here said yes (write_chunks): one round trip more per chunked job. */
static void send_chunks(jq_pipe_t *p, const enqueue_t *e, char *err, size_t errlen) {
    jq_args_str(&p->a, "MULTI");
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "DEL");
    jq_args_key(&p->a, p->c, e->queue, "payload", e->id);
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "RPUSH");
    jq_args_key(&p->a, p->c, e->queue, "payload", e->id);
    jq_args_add(&p->a, e->payload, e->chunk);
    jq_pipe_send_big(p, err, errlen);
    send_chunk_ttl(p, e, err, errlen);
    jq_args_str(&p->a, "EXEC");
    jq_pipe_send(p, err, errlen);
    size_t per = RPUSH_BATCH_BYTES / e->chunk ? RPUSH_BATCH_BYTES / e->chunk : 1;
    for (size_t i = 1; i < e->nchunks; i += per) {
        jq_args_str(&p->a, "RPUSH");
        jq_args_key(&p->a, p->c, e->queue, "payload", e->id);
        for (size_t j = i; j < e->nchunks && j < i + per; j++) {
            size_t off = j * e->chunk;
            jq_args_add(&p->a, e->payload + off, e->len - off < e->chunk ? e->len - off : e->chunk);
        }
        /* Written from the payload itself: no copy, and Redis reads each
         * RPUSH as it comes (docs/BENCHMARKS.md, large payloads). */
        jq_pipe_send_big(p, err, errlen);
        send_chunk_ttl(p, e, err, errlen);
    }
}

/* Writes the chunk list and reads every reply: a refused RPUSH (out of
 * memory) stops the enqueue before its XADD, and the partial list
 * expires. Returns 0 or -1 with err. */
static int write_chunks(jq_client_t *c, const enqueue_t *e, char *err, size_t errlen) {
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    send_chunks(&p, e, err, errlen);
    int rc = 0;
    redisReply *r;
    while (p.read < p.sent && (r = jq_pipe_reply(&p, err, errlen))) {
        char why[JQ_KEY_MAX];
        if (rc == 0 &&
            (jq_reply_ok(r, why, sizeof(why)) < 0 ||
             (r->type == REDIS_REPLY_ARRAY && jq_reply_each_ok(r, why, sizeof(why)) < 0))) {
            jq_seterr(err, errlen, "enqueue failed writing the payload's chunks: %s", why);
            rc = -1;
        }
        freeReplyObject(r);
    }
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

/* A delayed job: its hash and its schedule entry (§2). */
static void send_scheduled(jq_pipe_t *p, const enqueue_t *e, char *err, size_t errlen) {
    /* A stale hash of the same id (an old dead job) must not lend the
     * new job its error or attempt fields. */
    jq_args_str(&p->a, "DEL");
    jq_args_key(&p->a, p->c, e->queue, "job", e->id);
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "HSET");
    jq_args_key(&p->a, p->c, e->queue, "job", e->id);
    add_fields(&p->a, e);
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "ZADD");
    jq_args_key(&p->a, p->c, e->queue, "scheduled", NULL);
    jq_args_ll(&p->a, e->due);
    jq_args_str(&p->a, e->id);
    jq_pipe_send(p, err, errlen);
}

/* Sends the commands of one enqueue: SADD, then either a bare XADD or
 * MULTI ... EXEC; sets e->xadd_at. */
static void send_enqueue(jq_pipe_t *p, enqueue_t *e, char *err, size_t errlen) {
    char queues[JQ_KEY_MAX];
    jq_key_global(queues, sizeof(queues), p->c->prefix, "queues");
    jq_args_str(&p->a, "SADD");
    jq_args_str(&p->a, queues);
    jq_args_str(&p->a, e->queue);
    jq_pipe_send(p, err, errlen);
    if (e->multi) {
        jq_args_str(&p->a, "MULTI");
        jq_pipe_send(p, err, errlen);
    }
    size_t first = p->sent; /* the first command inside the MULTI */
    if (e->o->id) {
        /* A reused id must not let a waiter see the last job's result. */
        jq_args_del_result(&p->a, p->c, e->queue, e->id);
        jq_pipe_send(p, err, errlen);
    }
    if (e->nchunks) {
        /* The list is whole: from now on it lives as long as its job. */
        jq_args_str(&p->a, "PERSIST");
        jq_args_key(&p->a, p->c, e->queue, "payload", e->id);
        jq_pipe_send(p, err, errlen);
    }
    e->xadd_at = -1;
    if (e->ctl && e->ctl->unique) {
        e->xadd_at = (int)(p->sent - first);
        send_unique(p, e, err, errlen);
    } else if (e->due) {
        send_scheduled(p, e, err, errlen);
    } else {
        e->xadd_at = (int)(p->sent - first);
        jq_args_str(&p->a, "XADD");
        jq_args_key(&p->a, p->c, e->queue, jq_prio_stream(e->prio), NULL);
        jq_args_str(&p->a, "*");
        add_fields(&p->a, e);
        jq_pipe_send(p, err, errlen);
    }
    if (e->multi) {
        jq_args_str(&p->a, "EXEC");
        jq_pipe_send(p, err, errlen);
    }
}

/* The XADD's reply among the last one (EXEC's array, or the XADD's own
 * without a MULTI), or NULL; -1 with err when the transaction failed. */
static int find_xadd(const redisReply *last, const enqueue_t *e, const redisReply **xadd, char *err,
                     size_t errlen) {
    char why[JQ_KEY_MAX];
    *xadd = NULL;
    if (!e->multi) {
        *xadd = last;
        return 0;
    }
    if (last->type != REDIS_REPLY_ARRAY) {
        jq_seterr(err, errlen, "enqueue failed: transaction aborted");
        return -1;
    }
    if (jq_reply_each_ok(last, why, sizeof(why)) < 0) {
        jq_seterr(err, errlen, "enqueue failed: %s", why);
        return -1;
    }
    if (e->xadd_at >= 0 && (size_t)e->xadd_at < last->elements) *xadd = last->element[e->xadd_at];
    return 0;
}

/* The unique script's answer {added, id}: the id is the new job's, or
 * the holder's when nothing was added. Returns 0 or -1 with err. */
static int read_unique(const redisReply *r, jq_enqueue_ctl_t *ctl, char *id, size_t id_cap,
                       char *err, size_t errlen) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[1]->len >= id_cap) {
        jq_seterr(err, errlen, "enqueue failed: odd reply of the unique script");
        return -1;
    }
    ctl->duplicate = r->element[0]->integer == 0;
    memcpy(id, r->element[1]->str, r->element[1]->len);
    id[r->element[1]->len] = '\0';
    return 0;
}

/* Reads the replies of send_enqueue; copies the entry id when the job id
 * is the XADD's. Reads every reply even after an error, so that the
 * connection stays in step. */
static int read_enqueue(jq_pipe_t *p, const enqueue_t *e, char *id, size_t id_cap, char *err,
                        size_t errlen) {
    int rc = 0;
    redisReply *r;
    while (p->read < p->sent && (r = jq_pipe_reply(p, err, errlen))) {
        char why[JQ_KEY_MAX];
        const redisReply *xadd = NULL;
        if (jq_reply_ok(r, why, sizeof(why)) < 0) {
            if (rc == 0) jq_seterr(err, errlen, "enqueue failed: %s", why);
            rc = -1;
        } else if (rc == 0 && p->read == p->sent) {
            rc = find_xadd(r, e, &xadd, err, errlen);
        }
        if (rc == 0 && xadd && e->ctl && e->ctl->unique) {
            rc = read_unique(xadd, e->ctl, id, id_cap, err, errlen);
        } else if (rc == 0 && xadd && !id[0]) {
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
    return jq_pipe_end(p) < 0 ? -1 : rc;
}

int jq_client_enqueue(jq_client_t *c, const char *type, const char *payload, size_t len,
                      const jq_enqueue_opts_t *o, char *id_out, size_t id_cap, char *err,
                      size_t errlen) {
    return jq_client_enqueue_flags(c, type, payload, len, o, 0, id_out, id_cap, err, errlen);
}

int jq_client_enqueue_flags(jq_client_t *c, const char *type, const char *payload, size_t len,
                            const jq_enqueue_opts_t *o, unsigned flags, char *id_out, size_t id_cap,
                            char *err, size_t errlen) {
    return jq_client_enqueue_ctl(c, type, payload, len, o, flags, NULL, id_out, id_cap, err,
                                 errlen);
}

/* A duplicate's chunk list, written under an id that no job took. */
static void drop_chunks(jq_client_t *c, const char *queue, const char *id) {
    jq_args_t a;
    char err[JQ_ERR_LEN];
    jq_args_init(&a);
    jq_args_str(&a, "DEL");
    jq_args_key(&a, c, queue, "payload", id);
    jq_client_do(c, &a, err, sizeof(err));
    jq_args_destroy(&a);
}

static int check_ctl(const jq_enqueue_ctl_t *ctl, char *err, size_t errlen) {
    if (!ctl) return 0;
    if (ctl->unique && jq_check_name("unique key", ctl->unique, err, errlen) < 0) return -1;
    if (ctl->unique_for_ms < 0 || ctl->unique_for_ms > JQ_UNIQUE_FOR_MAX) {
        jq_seterr(err, errlen, "unique_for_ms must be 0 to %lld", JQ_UNIQUE_FOR_MAX);
        return -1;
    }
    if (ctl->unique_for_ms > 0 && !ctl->unique) {
        jq_seterr(err, errlen, "unique_for_ms needs a unique key");
        return -1;
    }
    return 0;
}

static int enqueue(jq_client_t *c, const char *type, const char *payload, size_t len,
                   const jq_enqueue_opts_t *o, unsigned flags, jq_enqueue_ctl_t *ctl, char *id_out,
                   size_t id_cap, char *err, size_t errlen);

/* A job of a batch counts in it first (PROTOCOL §12): if the batch is
 * sealed or unknown nothing is enqueued; if the job is then not added (an
 * error, a unique duplicate), the count is taken back. A producer killed
 * between the two steps leaves the batch one job short of ending: seal
 * only after every enqueue returned. */
int jq_client_enqueue_ctl(jq_client_t *c, const char *type, const char *payload, size_t len,
                          const jq_enqueue_opts_t *o, unsigned flags, jq_enqueue_ctl_t *ctl,
                          char *id_out, size_t id_cap, char *err, size_t errlen) {
    if (ctl) ctl->duplicate = 0;
    if (check_ctl(ctl, err, errlen) < 0) return JQ_CLIENT_EINVAL;
    if (!ctl || !ctl->batch)
        return enqueue(c, type, payload, len, o, flags, ctl, id_out, id_cap, err, errlen);
    if (jq_batch_join(c, ctl->batch, 1, err, errlen) < 0) return -1;
    int rc = enqueue(c, type, payload, len, o, flags, ctl, id_out, id_cap, err, errlen);
    if (rc < 0 || ctl->duplicate) {
        char why[JQ_ERR_LEN];
        if (jq_batch_join(c, ctl->batch, -1, why, sizeof(why)) < 0 && rc == 0) {
            jq_seterr(err, errlen, "taking a duplicate back out of batch %s: %s", ctl->batch, why);
            rc = -1;
        }
    }
    return rc;
}

static int enqueue(jq_client_t *c, const char *type, const char *payload, size_t len,
                   const jq_enqueue_opts_t *o, unsigned flags, jq_enqueue_ctl_t *ctl, char *id_out,
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
    if (check_enqueue(type, payload, len, o, queue, err, errlen) < 0) return JQ_CLIENT_EINVAL;
    if ((flags & JQ_HIGH) && (flags & JQ_LOW)) {
        jq_seterr(err, errlen, "a job is either high or low priority, not both");
        return JQ_CLIENT_EINVAL;
    }
    size_t chunk = o->chunk_size ? o->chunk_size : JQ_CHUNK_SIZE_DEFAULT;
    long long due = o->at_ms > 0      ? o->at_ms
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
    size_t nchunks = payload && len > chunk ? (len + chunk - 1) / chunk : 0;
    enqueue_t e = {queue,
                   type,
                   payload,
                   len,
                   o,
                   id,
                   due,
                   chunk,
                   nchunks,
                   nchunks || due || o->id,
                   (flags & JQ_NOTIFY) != 0,
                   -1,
                   ctl,
                   (flags & JQ_HIGH)  ? JQ_PRIO_HIGH
                   : (flags & JQ_LOW) ? JQ_PRIO_LOW
                                      : JQ_PRIO_NORMAL};
    char mine[JQ_CLIENT_ID_LEN];
    snprintf(mine, sizeof(mine), "%s", id);
    if (nchunks && write_chunks(c, &e, err, errlen) < 0) return -1;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    send_enqueue(&p, &e, err, errlen);
    if (read_enqueue(&p, &e, id, sizeof(id), err, errlen) < 0) return -1;
    if (ctl && ctl->duplicate && nchunks && strcmp(mine, id) != 0) drop_chunks(c, queue, mine);
    snprintf(id_out, id_cap, "%s", id);
    return 0;
}
