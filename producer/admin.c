/* Pause / resume (PROTOCOL §5) and the figures of a queue (§7), read in
 * one pipelined round trip so that they describe nearly one moment. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "job.h"

static int simple(jq_client_t *c, const char *queue, int pause, char *err, size_t errlen) {
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, pause ? "SET" : "DEL");
    jq_args_key(&a, c, queue, "paused", NULL);
    if (pause) jq_args_str(&a, "1");
    int rc = jq_client_do(c, &a, err, errlen);
    jq_args_destroy(&a);
    return rc;
}

int jq_client_pause(jq_client_t *c, const char *queue, char *err, size_t errlen) {
    return simple(c, queue, 1, err, errlen);
}

int jq_client_resume(jq_client_t *c, const char *queue, char *err, size_t errlen) {
    return simple(c, queue, 0, err, errlen);
}

/* The group `workers` in an XINFO GROUPS reply (a list of flat
 * field/value arrays): its pending count and its lag (-1 when nil, as
 * Redis reports after deletions it cannot count across). Returns 0 when
 * the group does not exist. */
static int group_figures(const redisReply *g, long long *pending, long long *lag) {
    *pending = 0;
    *lag = -1;
    if (!g || g->type != REDIS_REPLY_ARRAY) return 0;
    for (size_t i = 0; i < g->elements; i++) {
        const redisReply *grp = g->element[i];
        if (grp->type != REDIS_REPLY_ARRAY) continue;
        int ours = 0;
        for (size_t k = 0; k + 1 < grp->elements; k += 2) {
            const redisReply *v = grp->element[k + 1];
            if (jq_reply_is(grp->element[k], "name"))
                ours = jq_reply_is(v, JQ_GROUP);
            else if (jq_reply_is(grp->element[k], "pending"))
                jq_reply_ll(v, pending);
            else if (jq_reply_is(grp->element[k], "lag") && v->type == REDIS_REPLY_INTEGER)
                *lag = v->integer;
        }
        if (ours) return 1;
        *pending = 0;
        *lag = -1;
    }
    return 0;
}

static void read_totals(const redisReply *h, jq_queue_stats_t *s, long long *cancelled) {
    if (!h || h->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (cancelled && jq_reply_is(f, "cancelled")) jq_reply_ll(v, cancelled);
        long long *dst = jq_reply_is(f, "processed") ? &s->processed
                         : jq_reply_is(f, "failed")  ? &s->failed
                         : jq_reply_is(f, "retried") ? &s->retried
                         : jq_reply_is(f, "dead")    ? &s->dead_total
                                                     : NULL;
        if (dst) jq_reply_ll(v, dst);
    }
}

/* The priority levels' streams (PROTOCOL §15) count with the queue's:
 * XLEN and XINFO GROUPS of each, summed. */
enum {
    S_XLEN,
    S_GROUPS,
    S_SCHED,
    S_DEAD,
    S_PAUSED,
    S_TOTALS,
    S_XLEN_HI,
    S_GROUPS_HI,
    S_XLEN_LO,
    S_GROUPS_LO,
    S_N
};

static int is_groups(int i) { return i == S_GROUPS || i == S_GROUPS_HI || i == S_GROUPS_LO; }
static int is_xlen(int i) { return i == S_XLEN || i == S_XLEN_HI || i == S_XLEN_LO; }

void jq_stats_send(jq_pipe_t *p, const char *queue, char *err, size_t errlen) {
    static const char *const cmd[S_N][2] = {
        {"XLEN", "stream"},      {"XINFO", "stream"},      {"ZCARD", "scheduled"},
        {"ZCARD", "dead"},       {"EXISTS", "paused"},     {"HGETALL", "stats"},
        {"XLEN", "stream:high"}, {"XINFO", "stream:high"}, {"XLEN", "stream:low"},
        {"XINFO", "stream:low"},
    };
    for (int i = 0; i < S_N; i++) {
        jq_args_str(&p->a, cmd[i][0]);
        if (is_groups(i)) jq_args_str(&p->a, "GROUPS");
        jq_args_key(&p->a, p->c, queue, cmd[i][1], NULL);
        jq_pipe_send(p, err, errlen);
    }
}

/* Ready is the group's lag (PROTOCOL 1.1); where Redis reports no lag,
 * the stream's length less the pending entries; all of it without a
 * group. */
static void stream_figures(redisReply *xlen, redisReply *groups, jq_queue_stats_t *s) {
    long long length = 0, running, ready, lag;
    jq_reply_ll(xlen, &length);
    int has_group = group_figures(groups, &running, &lag);
    if (has_group && lag >= 0)
        ready = lag;
    else
        ready = length > running ? length - running : 0;
    s->length += length;
    s->running += running;
    s->ready += ready;
}

static void fill_stats(redisReply **r, jq_queue_stats_t *s, long long *cancelled) {
    stream_figures(r[S_XLEN], r[S_GROUPS], s);
    stream_figures(r[S_XLEN_HI], r[S_GROUPS_HI], s);
    stream_figures(r[S_XLEN_LO], r[S_GROUPS_LO], s);
    jq_reply_ll(r[S_SCHED], &s->scheduled);
    jq_reply_ll(r[S_DEAD], &s->dead);
    long long paused = 0;
    jq_reply_ll(r[S_PAUSED], &paused);
    s->paused = paused > 0;
    read_totals(r[S_TOTALS], s, cancelled);
}

int jq_stats_collect(jq_pipe_t *p, const char *queue, jq_queue_stats_t *s, long long *cancelled,
                     char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    snprintf(s->queue, sizeof(s->queue), "%s", queue);
    redisReply *r[S_N] = {0};
    int rc = 0;
    for (int i = 0; i < S_N; i++) {
        r[i] = jq_pipe_reply(p, err, errlen);
        if (!r[i]) {
            rc = -1;
            break;
        }
        /* XINFO GROUPS fails on a stream no one has written yet: that is
         * an empty queue, not a fault. */
        if (is_groups(i) && r[i]->type == REDIS_REPLY_ERROR) continue;
        /* A stream key holding another type is a broken queue, which the
         * workers report in <p>:{q}:broken (PROTOCOL §7): its counts are
         * 0, and the other queues' stats still show. */
        if (is_xlen(i) && r[i]->type == REDIS_REPLY_ERROR &&
            strncmp(r[i]->str, "WRONGTYPE", 9) == 0)
            continue;
        if (rc == 0 && jq_reply_ok(r[i], err, errlen) < 0) rc = -1;
    }
    if (rc == 0) fill_stats(r, s, cancelled);
    for (int i = 0; i < S_N; i++)
        if (r[i]) freeReplyObject(r[i]);
    return rc;
}

int jq_client_stats(jq_client_t *c, const char *queue, jq_queue_stats_t *s, char *err,
                    size_t errlen) {
    memset(s, 0, sizeof(*s));
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_stats_send(&p, queue, err, errlen);
    int rc = jq_stats_collect(&p, queue, s, NULL, err, errlen);
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

int jq_client_minutes(jq_client_t *c, const char *queue, long long now_ms, int n,
                      long long *processed, long long *failed, char *err, size_t errlen) {
    if (jq_check_queue(&queue, NULL, err, errlen) < 0) return -1;
    if (n < 1 || n > 1440) {
        jq_seterr(err, errlen, "minutes: want 1 to 1440, not %d", n);
        return -1;
    }
    long long last = now_ms / 60000;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (int i = 0; i < n; i++) {
        char minute[24];
        snprintf(minute, sizeof(minute), "%lld", last - (n - 1 - i));
        jq_args_str(&p.a, "HMGET");
        jq_args_key(&p.a, c, queue, "stats", minute);
        jq_args_str(&p.a, "processed");
        jq_args_str(&p.a, "failed");
        jq_pipe_send(&p, err, errlen);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = jq_pipe_reply(&p, err, errlen);
        if (!r) break;
        processed[i] = failed[i] = 0;
        if (rc == 0 && jq_reply_ok(r, err, errlen) < 0) rc = -1;
        if (rc == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            jq_reply_ll(r->element[0], &processed[i]);
            jq_reply_ll(r->element[1], &failed[i]);
        }
        freeReplyObject(r);
    }
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

void jq_client_queues_free(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int jq_client_queues(jq_client_t *c, char ***names, size_t *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    char key[JQ_KEY_MAX];
    jq_key_global(key, sizeof(key), c->prefix, "queues");
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "SMEMBERS");
    jq_args_str(&a, key);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    size_t count = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    char **out = count ? calloc(count, sizeof(*out)) : NULL;
    if (count && !out) goto oom;
    for (size_t i = 0; i < count; i++) {
        const redisReply *e = r->element[i];
        if (!(out[i] = jq_memdup(e->str, e->len))) {
            jq_client_queues_free(out, i);
            goto oom;
        }
    }
    freeReplyObject(r);
    if (count) qsort(out, count, sizeof(*out), cmp_str);
    *names = out;
    *n = count;
    return 0;
oom:
    freeReplyObject(r);
    jq_seterr(err, errlen, "out of memory");
    return -1;
}
