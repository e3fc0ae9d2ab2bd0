/* Fetching: one blocking XREADGROUP at a time on its own connection, asking
 * for no more entries than the worker has free slots, so a worker never
 * holds jobs it cannot run while another worker idles. Each entry becomes a
 * run: parsed, its payload decoded, then dispatched to the loop (io) or the
 * pool (cpu). Anything malformed is dead-lettered at once, without an
 * attempt; an entry of a type this worker does not handle is handed back
 * while another live worker handles it (types.h). */

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fetch.h"
#include "keys.h"
#include "levels.h"
#include "log.h"
#include "slot.h"

/* Asks for a read that had not reached Redis yet: each try is one round
 * trip on the write connection, and the read arrives within one. */
#define UNBLOCK_TRIES 20
#define BLOCK_MS 500 /* short, so pause and drain are noticed quickly */

void jq_fetch_init(jq_fetch_t *f, const jq_stage_env_t *env, const jq_fetch_borrow_t *b) {
    memset(f, 0, sizeof(*f));
    f->env = *env;
    f->b = *b;
    for (int i = 0; i < JQ_QSLOTS; i++) {
        f->qref[i].f = f;
        f->qref[i].q = i;
    }
    jq_args_init(&f->args);
}

void jq_fetch_destroy(jq_fetch_t *f) { jq_args_destroy(&f->args); }

int jq_fetch_busy(const jq_fetch_t *f) { return f->reading; }

/* Dead-letters r at once with reason why (no attempt made). */
static void dead(jq_fetch_t *f, jq_run_t *r, const char *why) {
    jq_run_dead(r, why);
    jq_finish_add(f->b.finish, r);
}

/* Decodes an inline payload into r->payload. The object references the
 * bytes of r->fields (or r->jbuf), which the run owns: no copy. */
int jq_fetch_decode_payload(jq_run_t *r, char *err, size_t errlen) {
    const char *p = r->job.payload.p;
    size_t len = r->job.payload.len;
    if (!r->job.has_payload) {
        r->payload.type = MSGPACK_OBJECT_NIL;
        return 0;
    }
    if (r->job.enc == JQ_ENC_JSON) {
        msgpack_sbuffer_init(&r->jbuf);
        if (jq_codec_json_to_msgpack(p, len, &r->jbuf, err, errlen) != 0) return -1;
        p = r->jbuf.data;
        len = r->jbuf.size;
    }
    /* Checked before it is unpacked: msgpack-c allocates a container's
     * elements by the count it announces, so a 5-byte payload could make
     * it ask for gigabytes (found by tests/fuzz/fuzz_msgpack). The checker
     * allocates nothing, refuses any count beyond the bytes left, and
     * walks headers, not bytes: cheap next to the unpack. */
    if (jq_codec_check_msgpack(p, len, err, errlen) != 0) return -1;
    if (!jq_run_zone(r)) {
        snprintf(err, errlen, "out of memory decoding the payload");
        return -1;
    }
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack(p, len, &off, r->zone, &r->payload);
    if (rc == MSGPACK_UNPACK_SUCCESS && off == len) {
        r->praw = p; /* the entry's field or jbuf: both live as the payload does */
        r->praw_len = len;
        return 0;
    }
    /* The checker accepts exactly what msgpack-c unpacks whole: only
     * memory can fail here. */
    snprintf(err, errlen, "out of memory decoding the payload (%zu bytes)", len);
    return -1;
}

/* The error text names the type as sent, but readable: a NUL or a
 * control byte in it would cut or garble the message (`?` stands in). The
 * type is at most JQ_NAME_MAX bytes (checked by jq_job_parse). */
static void unknown_type(char *err, size_t errlen, const jq_str_t *t) {
    char name[JQ_NAME_MAX + 1];
    size_t n = t->len < JQ_NAME_MAX ? t->len : JQ_NAME_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t->p[i];
        name[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    name[n] = '\0';
    snprintf(err, errlen, "unknown job type: %s", name);
}

/* Parses r's entry into r->job. Returns 0, or -1 with the reason to
 * dead-letter it in err. */
static int parse(jq_fetch_t *f, jq_run_t *r, const char *entry_id, long long deliveries, char *err,
                 size_t errlen) {
    const jq_reply_fields_t *fv = r->fields;
    if (jq_job_parse(&r->job, entry_id, fv ? fv->f : NULL, fv ? fv->n : 0, f->b.limits, err,
                     errlen) != 0)
        return -1;
    /* jobq never enqueues a job with no attempt left (a retry is scheduled
     * only while attempts remain): such an entry is a producer's mistake,
     * and calling it "worker lost" below would send people looking for a
     * crash that never happened. */
    if (r->job.attempt >= r->job.max_attempts) {
        snprintf(err, errlen, "bad field attempt: %lld (want less than max_attempts %lld)",
                 r->job.attempt, r->job.max_attempts);
        return -1;
    }
    /* Deliveries past the job's attempts mean the workers running it kept
     * dying: a poison job. Stop it here rather than crash another worker. */
    if (r->job.attempt + deliveries > r->job.max_attempts) {
        snprintf(err, errlen, "worker lost");
        return -1;
    }
    return 0;
}

void jq_fetch_intake(jq_fetch_t *f, int q, const char *entry_id, redisReply *fields,
                     long long deliveries) {
    /* The fields are copied behind the run, in its allocation: one
     * malloc per entry (reply.h). */
    size_t fsize = fields ? jq_reply_fields_size(fields) : 0;
    jq_run_t *r = fields && !fsize ? NULL : jq_run_new(f->b.runs, fsize);
    if (!r) {
        /* The entry stays pending and is redelivered: nothing is lost. */
        jq_error("out of memory taking entry %s", entry_id);
        return;
    }
    if (fields) r->fields = jq_reply_fields_fill(r + 1, fields);
    r->q = q;
    /* Held from here until freed, as io until its handler says otherwise:
     * a malformed entry only waits for its ack. */
    r->kind = JQ_KIND_IO;
    r->held = 1;
    jq_admit_hold(f->env.admit, q, JQ_KIND_IO, 1);

    char err[JQ_ERR_LEN];
    if (parse(f, r, entry_id, deliveries, err, sizeof(err)) != 0) {
        dead(f, r, err);
        return;
    }
    r->h = jq_registry_find(f->b.reg, r->job.type.p, r->job.type.len);
    if (!r->h) {
        /* Another consumer of the queue may handle it (types.h); dead
         * only when no live worker does, after the grace. */
        if (f->b.types &&
            jq_types_foreign(f->b.types, q, &r->job.type, entry_id, deliveries, jq_now_ms())) {
            jq_run_free(r);
            return;
        }
        unknown_type(err, sizeof(err), &r->job.type);
        dead(f, r, err);
        return;
    }
    jq_admit_learn(f->env.admit, q, r->h->kind);
    if (r->h->kind == JQ_KIND_CPU) {
        jq_admit_hold(f->env.admit, q, JQ_KIND_IO, -1);
        jq_admit_hold(f->env.admit, q, JQ_KIND_CPU, 1);
        r->kind = JQ_KIND_CPU;
    }
    if (r->job.chunks) {
        /* Chunked payloads are loaded asynchronously; the run is started
         * when the last chunk is decoded. */
        jq_chunks_load(f->b.chunks, r);
        return;
    }
    if (jq_fetch_decode_payload(r, err, sizeof(err)) != 0) {
        dead(f, r, err);
        return;
    }
    f->env.start(f->env.worker, r);
}

static int queue_of(jq_fetch_t *f, const redisReply *name) {
    for (int i = 0; i < *f->env.nqueues; i++)
        if (strlen(f->env.queues[i].stream) == name->len &&
            memcmp(f->env.queues[i].stream, name->str, name->len) == 0)
            return i;
    return -1;
}

static void on_groups_created(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    const jq_fetch_qref_t *ref = priv;
    jq_fetch_t *f = ref->f;
    if (!reply || reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "BUSYGROUP", 9) == 0)
        return;
    if (strncmp(reply->str, "WRONGTYPE", 9) == 0)
        f->b.key_error(f->env.worker, ref->q, reply->str); /* logged there, once */
    else
        jq_error("XGROUP CREATE %s: %s", f->env.queues[ref->q].stream, reply->str);
}

static void on_client_id(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        ((jq_fetch_t *)priv)->client_id = reply->integer;
}

void jq_fetch_connected(jq_fetch_t *f) {
    jq_args_t *a = &f->args;
    f->client_id = 0;
    jq_args_reset(a);
    jq_args_str(a, "CLIENT");
    jq_args_str(a, "ID");
    jq_rconn_args(f->b.rfetch, a, on_client_id, f);
    for (int i = 0; i < *f->env.nqueues; i++) jq_fetch_create_group(f, f->b.rfetch, i);
    jq_args_reset(a);
}

void jq_fetch_create_group(jq_fetch_t *f, jq_rconn_t *c, int q) {
    jq_args_t *a = &f->args;
    jq_args_reset(a);
    jq_args_str(a, "XGROUP");
    jq_args_str(a, "CREATE");
    jq_args_str(a, f->env.queues[q].stream);
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, "0");
    jq_args_str(a, "MKSTREAM");
    jq_rconn_args(c, a, on_groups_created, &f->qref[q]);
    jq_args_reset(a);
}

static void send_unblock(jq_fetch_t *f);

/* CLIENT UNBLOCK goes over the write connection, so it can overtake a
 * read sent just before it on the fetch connection: Redis then finds no
 * blocked client (0), and the read, once it arrives, blocks for its whole
 * BLOCK_MS with a queue that was paused meanwhile, and takes a job
 * enqueued after the pause (seen: 1 pause in 25 let a job through). So
 * while that same read is still out, ask again. */
static void on_unblocked(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    redisReply *r = rp;
    jq_fetch_t *f = priv;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && f->reading &&
        f->read_seq == f->unblock_seq && ++f->unblock_tries < UNBLOCK_TRIES)
        send_unblock(f);
}

static void send_unblock(jq_fetch_t *f) {
    jq_args_t *a = &f->args;
    jq_args_reset(a);
    jq_args_str(a, "CLIENT");
    jq_args_str(a, "UNBLOCK");
    jq_args_ll(a, f->client_id);
    jq_rconn_args(f->env.conn, a, on_unblocked, f);
    jq_args_reset(a);
}

void jq_fetch_unblock(jq_fetch_t *f) {
    /* Redis Cluster: the blocking reads are on the router's links, whose
     * ids the front does not know; they end within BLOCK_MS anyway. */
    if (!f->reading || !f->client_id || f->env.opt->url.cluster) return;
    f->unblock_seq = f->read_seq;
    f->unblock_tries = 0;
    send_unblock(f);
}

static void set_paused(jq_fetch_t *f, jq_queue_t *q, int p) {
    if (p != q->paused && (p || q->paused >= 0))
        jq_info("queue %s %s", q->name, p ? "paused" : "resumed");
    /* A read blocked since before the pause still covers the queue and
     * would hand us its next job: cut it short, and the next read leaves
     * the queue out. */
    if (p && q->paused == 0) jq_fetch_unblock(f);
    q->paused = p;
    if (q->levelled)
        for (int l = 0; l < JQ_PRIO_N; l++) f->env.queues[q->at[l]].paused = p;
    if (!p) jq_fetch_kick(f);
}

static void set_cancels(jq_fetch_t *f, int q, int c) {
    const jq_queue_t *b = &f->env.queues[q];
    int n = b->levelled ? JQ_PRIO_N : 1;
    for (int l = 0; l < n; l++) {
        int e = b->levelled ? b->at[l] : q; /* its levels' runs too */
        f->env.queues[e].cancels = c;
        if (f->b.cancels) f->b.cancels(f->env.worker, e, c);
    }
}

static void on_paused(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_fetch_qref_t *ref = priv;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return;
    set_paused(ref->f, &ref->f->env.queues[ref->q], reply->integer > 0);
}

static void on_cancels(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_fetch_qref_t *ref = priv;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return;
    set_cancels(ref->f, ref->q, reply->integer > 0);
}

/* Sends EXISTS of queue q's keys named what[0..n). */
static void send_exists(jq_fetch_t *f, int q, const char *const *what, int n, redisCallbackFn *fn) {
    jq_args_t *a = &f->args;
    jq_args_reset(a);
    jq_args_str(a, "EXISTS");
    for (int i = 0; i < n; i++) {
        char key[JQ_KEY_MAX];
        int n = jq_key(key, sizeof(key), f->env.opt->prefix, f->env.queues[q].name, what[i]);
        jq_args_dup(a, key, n < 0 ? 0 : (size_t)n);
    }
    jq_rconn_args(f->env.conn, a, fn, &f->qref[q]);
    jq_args_reset(a);
}

/* The answer to EXISTS paused cancel: 0 neither, 2 both; 1 is either,
 * asked apart (a rare moment: a queue paused, or cancels pending). */
static void on_flags(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    const jq_fetch_qref_t *ref = priv;
    jq_fetch_t *f = ref->f;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return;
    if (reply->integer == 1) {
        static const char *const p[] = {"paused"}, *const c[] = {"cancel"};
        send_exists(f, ref->q, p, 1, on_paused);
        send_exists(f, ref->q, c, 1, on_cancels);
        /* Taken as requests meanwhile: a running job's check goes now,
         * not a round trip later (cancel.h); the answer corrects it. */
        set_cancels(f, ref->q, 1);
        return;
    }
    int both = reply->integer > 1;
    set_paused(f, &f->env.queues[ref->q], both);
    set_cancels(f, ref->q, both);
}

void jq_fetch_check_paused(jq_fetch_t *f, int64_t now, int64_t pause_every_ms) {
    if (now - f->last_pause_check_ms < pause_every_ms) return;
    f->last_pause_check_ms = now;
    /* One EXISTS per queue asks both whether it is paused and whether it
     * has cancel requests (docs/PROTOCOL.md §11): a queue without cancels
     * pays nothing for them. A level's entry has its queue's answer. */
    static const char *const flags[] = {"paused", "cancel"};
    for (int i = 0; i < *f->env.nqueues; i++)
        if (!f->env.queues[i].is_level) send_exists(f, i, flags, 2, on_flags);
    jq_levels_check(f);
}

void jq_fetch_retry(jq_fetch_t *f) {
    f->backoff = 0;
    jq_fetch_kick(f);
}

int jq_fetch_entry_ok(const redisReply *e) {
    return e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < JQ_ENTRY_ID_MAX;
}

int jq_fetch_pending_ok(const redisReply *e) {
    return e && e->type == REDIS_REPLY_ARRAY && e->elements >= 4 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < JQ_ENTRY_ID_MAX &&
           e->element[3]->type == REDIS_REPLY_INTEGER;
}

static void take_entries(jq_fetch_t *f, redisReply *reply) {
    if (reply->type == REDIS_REPLY_ERROR) {
        /* One broken queue fails the whole read, and the error does not
         * say which: each is probed, the broken ones left out, and the
         * read goes again without them as soon as the probes answer (a
         * stream or group deleted under us is made again from id 0). */
        f->b.read_failed(f->env.worker, reply->str);
        f->backoff = 1;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) return;
    for (size_t s = 0; s < reply->elements; s++) {
        redisReply *st = reply->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int q = queue_of(f, st->element[0]);
        redisReply *entries = st->element[1];
        if (q < 0 || entries->type != REDIS_REPLY_ARRAY) continue;
        for (size_t e = 0; e < entries->elements; e++) {
            redisReply *ent = entries->element[e];
            if (!jq_fetch_entry_ok(ent)) continue;
            redisReply *fields = ent->element[1];
            jq_fetch_intake(f, q, ent->element[0]->str,
                            fields->type == REDIS_REPLY_ARRAY ? fields : NULL, 1);
        }
    }
}

/* Takes in every entry of an XREADGROUP reply. The read's reservation
 * stays meanwhile, and the kicks of jobs that end inside their start()
 * (noop) wait: the next read must not count slots the rest of this reply
 * will fill, and planning it once per entry was ~2% of a worker's CPU.
 * Every caller kicks once the reply is in. (jq_fetch_take.) */
void jq_fetch_take(jq_fetch_t *f, redisReply *reply) {
    f->taking++;
    take_entries(f, reply);
    f->taking--;
}

/* The blocking read's reply (fetch connection). Its reservation holds
 * until every entry is taken in (see take_reply). */
static void on_read(redisAsyncContext *ac, void *rp, void *priv) {
    jq_fetch_t *f = priv;
    redisReply *reply = rp;
    if (reply && !*f->env.stopping) jq_fetch_take(f, reply); /* NULL: lost; on_up kicks */
    f->reading = 0;
    /* The levelled queues it covered are read by their scripts again. */
    for (int q = 0; q < *f->env.nqueues; q++)
        if (f->in_block[q]) f->in_block[q] = 0, f->dry_until[q] = 0;
    memset(f->empty, 0, sizeof(f->empty)); /* strict: walk from the top again */
    jq_admit_unreserve(f->env.admit, &f->res);
    if (*f->env.stopping) return;
    jq_fetch_kick(f);
    f->env.maybe_exit(f->env.worker); /* a drain waits for this read to come back */
}

typedef struct piped {
    jq_fetch_t *f;
    int q; /* --queue-order strict: the one queue read (else -1) */
    jq_admit_read_t res;
} piped_t;

/* The reply of a read sent behind the acks on the write connection. It
 * counts in pipe_reads, so that a drain waits for it and runs what it
 * brings; once stopping (a forced stop closes that connection gracefully)
 * the entries stay pending for the master to hand back. */
static void on_piped_read(redisAsyncContext *ac, void *rp, void *priv) {
    piped_t *p = priv;
    jq_fetch_t *f = p->f;
    redisReply *reply = rp;
    if (reply && !*f->env.stopping && p->q >= 0 &&
        (reply->type == REDIS_REPLY_ARRAY || reply->type == REDIS_REPLY_NIL))
        jq_fetch_strict_got(f, p->q, p->res.count[p->q],
                            reply->type == REDIS_REPLY_ARRAY ? jq_levels_entries(reply) : 0);
    if (reply && !*f->env.stopping) jq_fetch_take(f, reply);
    jq_fetch_piped_done(f, &p->res);
    free(p);
}

void jq_fetch_piped_done(jq_fetch_t *f, const jq_admit_read_t *res) {
    f->pipe_reads--;
    jq_admit_unreserve(f->env.admit, res);
    if (*f->env.stopping) return;
    jq_fetch_kick(f);
    f->env.maybe_exit(f->env.worker);
}

/* Sends one XREADGROUP on c of the n queues qs[] (a levelled one with
 * its three streams, high first), COUNT count (BLOCK block ms when
 * block > 0). Returns 0, or -1 when c is down (fn never runs). */
static int send_read(jq_fetch_t *f, jq_rconn_t *c, const int *qs, int n, long long count,
                     long long block, redisCallbackFn *fn, void *priv) {
    jq_args_t *a = &f->args;
    const jq_queue_t *queues = f->env.queues;
    int ss[JQ_QSLOTS], ns = 0;
    for (int i = 0; i < n; i++) {
        const jq_queue_t *q = &queues[qs[i]];
        if (!q->levelled) {
            ss[ns++] = qs[i];
            continue;
        }
        for (int l = 0; l < JQ_PRIO_N; l++) ss[ns++] = q->at[l];
    }
    jq_args_reset(a);
    jq_args_str(a, "XREADGROUP");
    jq_args_str(a, "GROUP");
    jq_args_str(a, JQ_GROUP);
    jq_args_str(a, f->env.worker_id);
    jq_args_str(a, "COUNT");
    jq_args_ll(a, count);
    if (block) {
        jq_args_str(a, "BLOCK");
        jq_args_ll(a, block);
    }
    jq_args_str(a, "STREAMS");
    for (int i = 0; i < ns; i++) jq_args_str(a, queues[ss[i]].stream);
    for (int i = 0; i < ns; i++) jq_args_add(a, ">", 1);
    int rc = jq_rconn_args(c, a, fn, priv);
    jq_args_reset(a);
    return rc;
}

/* Gives back n of queue q's reservation in plan. */
static void give_back(jq_fetch_t *f, jq_admit_read_t *plan, int q, long long n) {
    jq_admit_read_t part;
    memset(&part, 0, sizeof(part));
    part.count[q] = n;
    part.uses[q] = plan->uses[q];
    jq_admit_unreserve(f->env.admit, &part);
    plan->count[q] -= n;
}

/* Takes the levelled queues out of plan: each read by its script
 * (levels.h) when it may be, its share given back when it may not (its
 * script or the blocking read is out already); a dry one stays in the
 * plan of the blocking read (blocking), or is given back. */
static void levels_aside(jq_fetch_t *f, jq_admit_read_t *plan, int blocking) {
    int64_t now = jq_now_ms();
    for (int q = 0; q < *f->env.nqueues; q++) {
        if (!plan->count[q] || !f->env.queues[q].levelled) continue;
        int scripted = jq_levels_scripted(f, q, now);
        if (!scripted && blocking && !f->lv_reading[q]) continue; /* dry */
        jq_admit_read_t part;
        memset(&part, 0, sizeof(part));
        part.count[q] = plan->count[q];
        part.uses[q] = plan->uses[q];
        plan->count[q] = 0;
        if (!scripted || jq_levels_read(f, q, &part) != 0) jq_admit_unreserve(f->env.admit, &part);
    }
}

/* The blocking read has one COUNT for all its streams, and takes up to
 * COUNT from each: a dry levelled queue's share is split over its three
 * streams (a share under three leaves it out: it is polled by its script
 * once dry_until passes). Gives back what one COUNT leaves over, lists
 * the queues read in qs[] (*n), and returns the COUNT (0: no read). */
static long long block_count(jq_fetch_t *f, jq_admit_read_t *res, int *qs, int *n) {
    long long m = 0;
    *n = 0;
    for (int q = 0; q < *f->env.nqueues; q++) {
        if (!res->count[q]) continue;
        long long per = res->count[q] / (f->env.queues[q].levelled ? JQ_PRIO_N : 1);
        if (!per)
            give_back(f, res, q, res->count[q]);
        else if (!m || per < m)
            m = per;
    }
    for (int q = 0; q < *f->env.nqueues; q++) {
        if (!res->count[q]) continue;
        int lv = f->env.queues[q].levelled;
        give_back(f, res, q, res->count[q] - m * (lv ? JQ_PRIO_N : 1));
        f->in_block[q] = (unsigned char)lv;
        qs[(*n)++] = q;
    }
    return m;
}

/* Whether queues a and b may share an XREADGROUP: always, but in Redis
 * Cluster only when their streams are in one slot (rcluster.h). */
static int same_slot(const jq_fetch_t *f, int a, int b) {
    if (!f->env.opt->url.cluster || a == b) return 1;
    const char *sa = f->env.queues[a].stream, *sb = f->env.queues[b].stream;
    return jq_slot_of(sa, strlen(sa)) == jq_slot_of(sb, strlen(sb));
}

/* Reads behind the acks: one XREADGROUP per distinct COUNT (XREADGROUP
 * has one COUNT for all its streams), each with its share of the plan. */
static void send_piped(jq_fetch_t *f, const int *skip) {
    jq_admit_read_t plan;
    if (jq_admit_plan(f->env.admit, skip, 1, 0, &plan) <= 0) return;
    levels_aside(f, &plan, 0);
    for (int q = 0; q < *f->env.nqueues; q++) {
        long long count = plan.count[q];
        if (!count) continue;
        jq_admit_read_t part;
        int qs[JQ_QSLOTS], n = 0;
        memset(&part, 0, sizeof(part));
        for (int i = q; i < *f->env.nqueues; i++) {
            if (plan.count[i] != count || !same_slot(f, q, i)) continue;
            part.count[i] = count;
            part.uses[i] = plan.uses[i];
            plan.count[i] = 0;
            qs[n++] = i;
        }
        piped_t *p = malloc(sizeof(*p));
        if (p) {
            p->f = f;
            p->q = -1;
            p->res = part;
        }
        if (!p || send_read(f, f->env.conn, qs, n, count, 0, on_piped_read, p) != 0) {
            jq_admit_unreserve(f->env.admit, &part);
            free(p);
            continue;
        }
        f->pipe_reads++;
    }
}

/* A queue is skipped while paused or unhealthy (qhealth.h); one with
 * levels while any of its streams is unhealthy, since its reads cover
 * them all. */
static void skipped_queues(const jq_fetch_t *f, int *skip) {
    const jq_queue_t *qs = f->env.queues;
    for (int i = 0; i < *f->env.nqueues; i++)
        skip[i] = qs[i].paused || qs[i].levels_unknown || !jq_queue_ok(&qs[i]) ||
                  qs[i].limited; /* read by limit.c, with permits */
    for (int i = 0; i < *f->env.nqueues; i++)
        if (qs[i].is_level && skip[i]) skip[qs[i].base] = 1;
}

void jq_fetch_aside(jq_fetch_t *f) {
    if (f->env.opt->strict || *f->b.draining || *f->env.stopping || f->backoff ||
        jq_finish_held(f->b.finish) || f->pipe_reads || !f->env.conn->up)
        return;
    int skip[JQ_QSLOTS];
    skipped_queues(f, skip);
    send_piped(f, skip);
}

void jq_fetch_strict_got(jq_fetch_t *f, int q, long long asked, long long got) {
    if (got < asked)
        f->empty[q] = 1;
    else
        memset(f->empty, 0, sizeof(f->empty));
}

/* One of the blocking reads in Redis Cluster, one per slot: its queues
 * and what it reserved. */
typedef struct part {
    jq_fetch_t *f;
    int qs[JQ_QSLOTS], n;
    jq_admit_read_t res;
} part_t;

/* Marks q (with its levels' entries) as covered by a part, or not. */
static void set_blocked(jq_fetch_t *f, int q, unsigned char on) {
    const jq_queue_t *b = &f->env.queues[q];
    f->blocked[q] = on;
    if (b->levelled)
        for (int l = 0; l < JQ_PRIO_N; l++) f->blocked[b->at[l]] = on;
}

static void on_part(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    part_t *p = priv;
    jq_fetch_t *f = p->f;
    redisReply *reply = rp;
    if (reply && !*f->env.stopping) jq_fetch_take(f, reply);
    f->reading--;
    for (int i = 0; i < p->n; i++) {
        int q = p->qs[i];
        set_blocked(f, q, 0);
        if (f->in_block[q]) f->in_block[q] = 0, f->dry_until[q] = 0;
        f->empty[q] = 0;
    }
    jq_admit_unreserve(f->env.admit, &p->res);
    free(p);
    if (*f->env.stopping) return;
    jq_fetch_kick(f);
    f->env.maybe_exit(f->env.worker);
}

/* Redis Cluster: the blocking read of the n queues qs[] split into one
 * read per slot (an XREADGROUP may only name one slot's streams), each
 * on the router's link of its slot with its share of res; what is not
 * sent is given back. */
static void send_parts(jq_fetch_t *f, jq_admit_read_t *res, const int *qs, int n, long long count,
                       long long block) {
    unsigned char used[JQ_QSLOTS] = {0};
    for (int i = 0; i < n; i++) {
        if (used[i]) continue;
        part_t *p = calloc(1, sizeof(*p));
        if (!p) break;
        p->f = f;
        for (int j = i; j < n; j++) {
            if (used[j] || !same_slot(f, qs[i], qs[j])) continue;
            int q = qs[j];
            const jq_queue_t *b = &f->env.queues[q];
            used[j] = 1;
            p->qs[p->n++] = q;
            /* A levelled queue's reservation is on its normal entry (and
             * its levels' entries, when the plan gave them any). */
            for (int l = -1; l < (b->levelled ? JQ_PRIO_N : 0); l++) {
                int e = l < 0 ? q : b->at[l];
                if (l >= 0 && e == q) continue;
                p->res.count[e] = res->count[e];
                p->res.uses[e] = res->uses[e];
                res->count[e] = 0;
            }
        }
        if (send_read(f, f->b.rfetch, p->qs, p->n, count, block, on_part, p) != 0) {
            jq_admit_unreserve(f->env.admit, &p->res);
            for (int k = 0; k < p->n; k++) f->in_block[p->qs[k]] = 0;
            free(p);
            continue;
        }
        f->reading++, f->read_seq++;
        for (int k = 0; k < p->n; k++) set_blocked(f, p->qs[k], 1);
    }
    jq_admit_unreserve(f->env.admit, res);
    memset(res, 0, sizeof(*res));
}

/* Redis Cluster, --queue-order weighted: the queues that no blocking read
 * covers get one, a read per slot, with the slots free now (the others
 * keep theirs until their read comes back). */
static void cluster_block(jq_fetch_t *f, const int *skip, long long block) {
    if (!f->b.rfetch->up) return;
    int sk[JQ_QSLOTS];
    for (int q = 0; q < *f->env.nqueues; q++) sk[q] = skip[q] || f->blocked[q];
    jq_admit_read_t res;
    if (jq_admit_plan(f->env.admit, sk, 0, 0, &res) <= 0) return;
    levels_aside(f, &res, 1);
    int qs[JQ_QSLOTS], n;
    long long count = block_count(f, &res, qs, &n);
    if (!count) return;
    send_parts(f, &res, qs, n, count, block);
}

/* Sends the blocking read of the n queues qs[] for what f->res reserved,
 * or gives that back. */
static void send_block(jq_fetch_t *f, const int *qs, int n, long long count, long long block) {
    if (f->env.opt->url.cluster) {
        send_parts(f, &f->res, qs, n, count, block);
        return;
    }
    if (send_read(f, f->b.rfetch, qs, n, count, block, on_read, f) == 0) {
        f->reading = 1, f->read_seq++;
        return;
    }
    jq_admit_unreserve(f->env.admit, &f->res);
    memset(f->in_block, 0, sizeof(f->in_block));
}

/* Sends a read of base queue q alone for the slots its plan gives it, on
 * the write connection (behind the acks). Returns 1 when sent, 0 when q
 * gets no slot, -1 when it could not be sent. */
static int strict_read(jq_fetch_t *f, int q, int ahead) {
    int only[JQ_QSLOTS];
    for (int i = 0; i < JQ_QSLOTS; i++) only[i] = i != q;
    jq_admit_read_t plan;
    if (jq_admit_plan(f->env.admit, only, ahead, 0, &plan) <= 0) return 0;
    if (f->env.queues[q].levelled) {
        if (jq_levels_read(f, q, &plan) == 0) return 1;
        jq_admit_unreserve(f->env.admit, &plan);
        return -1;
    }
    piped_t *p = malloc(sizeof(*p));
    if (p) p->f = f, p->q = q, p->res = plan;
    if (!p || send_read(f, f->env.conn, &q, 1, plan.count[q], 0, on_piped_read, p) != 0) {
        jq_admit_unreserve(f->env.admit, &plan);
        free(p);
        return -1;
    }
    f->pipe_reads++;
    return 1;
}

/* --queue-order strict: one read at a time, down --queues. The first
 * queue not known empty gets every free slot it can use (its kind, its
 * --queues limit); a read that brings fewer than asked marks it empty and
 * the walk goes on with what is left; a full one sends the next read back
 * to the top, so that a job arriving on a higher queue is the next one
 * started. A queue paused, limited (§9: read by its permits) or with no
 * free slot of its kind holds back nobody. Only when every queue is empty
 * does the blocking read go, covering them all (COUNT split as weighted),
 * so a job on any queue wakes the worker at once. The price: one round
 * trip more per read for each empty queue above the first with jobs. */
static void strict_kick(jq_fetch_t *f, const int *skip, long long block) {
    if (f->reading || f->pipe_reads || !f->env.conn->up) return;
    int ahead = !jq_finish_pending(f->b.finish), unknown = 0;
    for (int q = 0; q < *f->env.nqueues; q++) {
        if (skip[q] || f->env.queues[q].is_level || f->empty[q]) continue;
        int rc = strict_read(f, q, ahead);
        if (rc != 0) return; /* sent; or not (connection down): the reconnect kicks */
        unknown = 1;
    }
    /* Queues not known empty, but no slot for them now: the marks go, so
     * that the read a freed slot kicks starts from the top again. */
    if (unknown || !f->b.rfetch->up) {
        memset(f->empty, 0, sizeof(f->empty));
        return;
    }
    jq_admit_read_t *res = &f->res;
    int qs[JQ_QSLOTS], n;
    long long count = 0;
    if (jq_admit_plan(f->env.admit, skip, 0, 0, res) > 0) count = block_count(f, res, qs, &n);
    if (!count) {
        /* Too few slots to name every stream: polled from the tick. */
        memset(f->empty, 0, sizeof(f->empty));
        return;
    }
    send_block(f, qs, n, count, block);
}

/* At most one blocking read and one round of reads behind the acks in
 * flight; every read's COUNTs are reserved (admit.h) until its entries
 * are in:
 *  - behind the acks: once every finished run's outcome has been sent (the
 *    batch is empty), a read without BLOCK on the write connection comes
 *    after those XACKs (Redis runs one connection's commands in order), so
 *    it may count their slots as free. Under load this is the usual read:
 *    acks and the next read share one round trip.
 *  - blocking, on the fetch connection, for the slots free now: finished
 *    runs count as held until their XACK is answered, since a read on
 *    another connection may overtake it. It has one COUNT for all its
 *    queues: the smallest of their plans.
 * So the worker never holds (XPENDING) more entries than it can run. The
 * price: a worker cannot read its next batch while the last one's acks are
 * on their way. --read-ahead N lets up to N finished entries whose ack is
 * not yet answered count as free for the blocking read too (admit.h), so
 * two batches can be in flight; measured on the shared 2-core box it did
 * not win (noop, results: 0.99x; result_ttl 0: 0.92x, docs/BENCHMARKS.md),
 * so the default stays strict. */
void jq_fetch_kick(jq_fetch_t *f) {
    /* held: Redis refused our last outcomes; no new job until it takes
     * them (finish.c). */
    if (*f->b.draining || *f->env.stopping || f->backoff || jq_finish_held(f->b.finish) ||
        f->taking)
        return;
    /* Limited queues first: their reads are small (one burst of permits)
     * and must not find every free slot reserved by the reads below. */
    long long block = BLOCK_MS;
    if (f->b.limit_kick) {
        int64_t next = f->b.limit_kick(f->env.worker);
        if (next >= 0 && next < block) block = next > 10 ? next : 10;
    }
    int skip[JQ_QSLOTS];
    skipped_queues(f, skip);
    if (f->env.opt->strict) {
        strict_kick(f, skip, block);
        return;
    }
    if (!f->pipe_reads && !jq_finish_pending(f->b.finish) && f->env.conn->up &&
        jq_admit_acking(f->env.admit) > 0)
        send_piped(f, skip);
    if (f->env.opt->url.cluster) {
        cluster_block(f, skip, block);
        return;
    }
    if (!f->reading && f->b.rfetch->up) {
        jq_admit_read_t *res = &f->res;
        if (jq_admit_plan(f->env.admit, skip, 0, 0, res) <= 0) return;
        levels_aside(f, res, 1);
        int qs[JQ_QSLOTS], n;
        long long count = block_count(f, res, qs, &n);
        if (!count) return;
        send_block(f, qs, n, count, block);
    }
}
