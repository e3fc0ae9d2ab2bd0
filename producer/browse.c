/* Browsing the jobs of the stream (jq_client_stream_list): the ready ones
 * after the group's last delivered entry, the running ones from the
 * group's pending list, a page at a time, by entry id. The sets (dead,
 * scheduled, done) are paged by dead.c. Bounded: one page costs one
 * XRANGE (ready), or one XPENDING and one pipelined XRANGE per entry
 * (running), per priority level; nothing scans the whole stream.
 *
 * A queue has three levels, each a stream (PROTOCOL.md §15): a page goes
 * through high, then normal, then low, the order a worker runs them in,
 * and each job says its level in the field `priority`. A level's stream
 * that does not exist costs one reply saying so. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "job.h"

#define PAGE_MAX 10000

/* Adds name = value (len bytes) to job->fields, which has room. */
static int add(jq_dead_job_t *job, const char *name, const char *value, size_t len) {
    jq_field_t *f = &job->fields[job->nfields];
    f->name = jq_memdup(name, strlen(name));
    f->value = jq_memdup(value, len);
    f->value_len = len;
    job->nfields++;
    if (!f->name || !f->value) return -1;
    if (!strcmp(name, "type")) job->type = f->value;
    if (!strcmp(name, "error")) job->error = f->value;
    if (!strcmp(name, "attempt")) jq_parse_ll(value, len, 0, 1LL << 40, &job->attempts);
    return 0;
}

static int add_ll(jq_dead_job_t *job, const char *name, long long v) {
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", v);
    return add(job, name, buf, (size_t)n);
}

/* Fills job from one XRANGE entry [id, [field, value, ...]] of level
 * lv's stream, its payload left out when brief; `extra` more fields may
 * follow. The level is the stream's: a `priority` field in the entry is
 * ignored by workers (§15), so it is replaced here. */
static int fill_entry(jq_dead_job_t *job, const redisReply *e, jq_prio_t lv, int brief,
                      size_t extra) {
    memset(job, 0, sizeof(*job));
    job->attempts = -1;
    const redisReply *eid = e->element[0], *f = e->element[1];
    size_t nf = f->type == REDIS_REPLY_ARRAY ? f->elements / 2 : 0;
    job->fields = calloc(nf + 2 + extra, sizeof(*job->fields));
    if (!job->fields) return -1;
    snprintf(job->id, sizeof(job->id), "%.*s", (int)eid->len, eid->str);
    job->died_at = strtoll(eid->str, NULL, 10); /* an entry id starts with its ms */
    if (add(job, "entry_id", eid->str, eid->len) < 0) return -1;
    for (size_t i = 0; i < nf; i++) {
        const redisReply *k = f->element[2 * i], *v = f->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if ((brief && jq_reply_is(k, "payload")) || jq_reply_is(k, "priority")) continue;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)k->len, k->str);
        if (add(job, name, v->str, v->len) < 0) return -1;
        if (!strcmp(name, "id")) snprintf(job->id, sizeof(job->id), "%.*s", (int)v->len, v->str);
    }
    job->attempts = job->attempts < 0 ? 0 : job->attempts;
    const char *name = jq_prio_name(lv);
    return add(job, "priority", name, strlen(name));
}

/* The group's last delivered entry ("0-0" before any read). */
static int last_delivered(jq_client_t *c, const char *queue, jq_prio_t lv, char *out, size_t cap,
                          char *err, size_t errlen) {
    snprintf(out, cap, "0-0");
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "XINFO");
    jq_args_str(&a, "GROUPS");
    jq_args_key(&a, c, queue, jq_prio_stream(lv), NULL);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return strstr(err, "no such key") ? 0 : -1;
    for (size_t g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
        const redisReply *h = r->element[g];
        int ours = 0;
        const redisReply *last = NULL;
        for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
            if (jq_reply_is(h->element[i], "name")) ours = jq_reply_is(h->element[i + 1], JQ_GROUP);
            if (jq_reply_is(h->element[i], "last-delivered-id")) last = h->element[i + 1];
        }
        if (ours && last && last->type == REDIS_REPLY_STRING)
            snprintf(out, cap, "%.*s", (int)last->len, last->str);
    }
    freeReplyObject(r);
    return 0;
}

/* Which of two entry ids is later (both "<ms>-<seq>"). */
static int id_after(const char *a, const char *b) {
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    if (am != bm) return am > bm;
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    return strtoull(ad ? ad + 1 : "0", NULL, 10) > strtoull(bd ? bd + 1 : "0", NULL, 10);
}

static int list_ready(jq_client_t *c, const char *queue, jq_prio_t lv, const char *after,
                      long long count, int brief, jq_dead_job_t *list, size_t *n, char *err,
                      size_t errlen) {
    char from[64];
    if (last_delivered(c, queue, lv, from, sizeof(from), err, errlen) < 0) return -1;
    if (after && id_after(after, from)) snprintf(from, sizeof(from), "%s", after);
    char start[70];
    snprintf(start, sizeof(start), "(%s", from);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "XRANGE");
    jq_args_key(&a, c, queue, jq_prio_stream(lv), NULL);
    jq_args_str(&a, start);
    jq_args_str(&a, "+");
    jq_args_str(&a, "COUNT");
    jq_args_ll(&a, count);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    int rc = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++)
        if (r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements == 2)
            if ((rc = fill_entry(&list[(*n)++], r->element[i], lv, brief, 0)) < 0)
                jq_seterr(err, errlen, "out of memory");
    freeReplyObject(r);
    return rc;
}

static int list_running(jq_client_t *c, const char *queue, jq_prio_t lv, const char *after,
                        long long count, int brief, jq_dead_job_t *list, size_t *n, char *err,
                        size_t errlen) {
    char start[70] = "-";
    if (after) snprintf(start, sizeof(start), "(%s", after);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "XPENDING");
    jq_args_key(&a, c, queue, jq_prio_stream(lv), NULL);
    jq_args_str(&a, JQ_GROUP);
    jq_args_str(&a, start);
    jq_args_str(&a, "+");
    jq_args_ll(&a, count);
    redisReply *pend = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!pend) return strstr(err, "NOGROUP") || strstr(err, "no such key") ? 0 : -1;
    size_t np = pend->type == REDIS_REPLY_ARRAY ? pend->elements : 0;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < np; i++) {
        const redisReply *row = pend->element[i];
        jq_args_str(&p.a, "XRANGE");
        jq_args_key(&p.a, c, queue, jq_prio_stream(lv), NULL);
        jq_args_add(&p.a, row->element[0]->str, row->element[0]->len);
        jq_args_add(&p.a, row->element[0]->str, row->element[0]->len);
        jq_pipe_send(&p, err, errlen);
    }
    int rc = 0;
    for (size_t i = 0; i < np; i++) {
        redisReply *e = jq_pipe_reply(&p, err, errlen);
        if (!e) break;
        const redisReply *row = pend->element[i];
        /* An entry acked and trimmed since the XPENDING has ended: left out. */
        if (rc == 0 && e->type == REDIS_REPLY_ARRAY && e->elements == 1 &&
            row->type == REDIS_REPLY_ARRAY && row->elements == 4) {
            jq_dead_job_t *job = &list[(*n)++];
            rc = fill_entry(job, e->element[0], lv, brief, 3);
            if (rc == 0) rc = add(job, "consumer", row->element[1]->str, row->element[1]->len);
            if (rc == 0) rc = add_ll(job, "idle_ms", row->element[2]->integer);
            if (rc == 0) rc = add_ll(job, "deliveries", row->element[3]->integer);
            if (rc < 0) jq_seterr(err, errlen, "out of memory");
        }
        freeReplyObject(e);
    }
    if (jq_pipe_end(&p) < 0) rc = -1;
    freeReplyObject(pend);
    return rc;
}

/* Splits a page cursor: "<level>:<entry id>", or a bare entry id (an
 * entry id has no ':'), which is normal's, as before levels. Returns 0,
 * or -1 with err. */
static int split_after(const char **after, jq_prio_t *lv, char *err, size_t errlen) {
    *lv = JQ_PRIO_HIGH;
    if (!*after) return 0;
    if (jq_check_name("entry id", *after, err, errlen) < 0) return -1;
    const char *colon = strchr(*after, ':');
    *lv = JQ_PRIO_NORMAL;
    if (!colon) return 0;
    if (jq_prio_parse(*after, (size_t)(colon - *after), lv) != 0 || !colon[1] ||
        strchr(colon + 1, ':')) {
        jq_seterr(err, errlen, "bad cursor '%s' (want ENTRY_ID or high|normal|low:ENTRY_ID)",
                  *after);
        return -1;
    }
    *after = colon + 1;
    return 0;
}

int jq_client_stream_list(jq_client_t *c, const char *queue, int running, const char *after,
                          long long count, int brief, jq_dead_job_t **jobs, size_t *n, char *err,
                          size_t errlen) {
    *jobs = NULL;
    *n = 0;
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    if (count <= 0 || count > PAGE_MAX) count = count <= 0 ? 100 : PAGE_MAX;
    jq_prio_t from;
    if (split_after(&after, &from, err, errlen) < 0) return -1;
    if (jq_client_ready(c, err, errlen) < 0) return -1;
    jq_dead_job_t *list = calloc((size_t)count, sizeof(*list));
    if (!list) {
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    /* The cursor's level from after its entry, the levels below it whole. */
    for (int lv = from; lv < JQ_PRIO_N && rc == 0 && (long long)*n < count; lv++) {
        const char *at = lv == (int)from ? after : NULL;
        long long left = count - (long long)*n;
        rc = running ? list_running(c, queue, (jq_prio_t)lv, at, left, brief, list, n, err, errlen)
                     : list_ready(c, queue, (jq_prio_t)lv, at, left, brief, list, n, err, errlen);
    }
    if (rc < 0 || *n == 0) {
        jq_dead_jobs_free(list, (size_t)count);
        *n = 0;
        return rc;
    }
    *jobs = list;
    return 0;
}

int jq_client_keep_done(jq_client_t *c, const char *queue, long long keep, char *err,
                        size_t errlen) {
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    if (keep > 0) {
        jq_args_str(&a, "HSET");
        jq_args_key(&a, c, queue, "settings", NULL);
        jq_args_str(&a, "keep_done");
        jq_args_ll(&a, keep);
        int rc = jq_client_do(c, &a, err, errlen);
        jq_args_destroy(&a);
        return rc;
    }
    /* Off: the setting and the index go together. */
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "HDEL");
    jq_args_key(&p.a, c, queue, "settings", NULL);
    jq_args_str(&p.a, "keep_done");
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "DEL");
    jq_args_key(&p.a, c, queue, "done", NULL);
    jq_pipe_send(&p, err, errlen);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        redisReply *r = jq_pipe_reply(&p, err, errlen);
        if (!r || jq_reply_ok(r, err, errlen) < 0) rc = -1;
        if (r) freeReplyObject(r);
        if (!r) break;
    }
    jq_args_destroy(&a);
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}
