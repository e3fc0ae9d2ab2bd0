/* Schedules (PROTOCOL §13): adding, removing, pausing and listing them. The
 * consumers fire them (consumer/worker/ticks.c); here the keys are only
 * written and read, with plain commands any client could send. */

#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "cron.h"
#include "job.h"

/* The first tick after now, or -1 with err. */
static long long first_tick(const jq_schedule_t *s, long long now, char *err, size_t errlen) {
    if (s->every_ms > 0) {
        if (s->every_ms < 100) {
            jq_seterr(err, errlen, "an interval must be at least 100 ms");
            return -1;
        }
        return jq_every_next(s->every_ms, now);
    }
    if (!s->cron) {
        jq_seterr(err, errlen, "a schedule needs an interval or a cron expression");
        return -1;
    }
    jq_cron_t cron;
    if (jq_cron_parse(&cron, s->cron, err, errlen) < 0) return -1;
    jq_tz_t *tz = jq_tz_load(s->tz, err, errlen);
    if (!tz) return -1;
    long long next = jq_cron_next(&cron, tz, now);
    jq_tz_free(tz);
    if (next < 0) jq_seterr(err, errlen, "cron expression '%s' never fires", s->cron);
    return next;
}

static int check_schedule(const char *queue, const char *name, char *err, size_t errlen) {
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    if (!name || !jq_schedule_name_valid(name)) {
        jq_seterr(err, errlen, "bad schedule name '%s' (want 1 to %d bytes of [A-Za-z0-9_.-])",
                  name ? name : "", JQ_SCHEDULE_NAME_MAX);
        return -1;
    }
    return 0;
}

static void add_job_key(jq_args_t *a, const jq_client_t *c, const char *queue, const char *name) {
    char key[JQ_KEY_MAX];
    jq_key_schedule(key, sizeof(key), c->prefix, queue, name, 1);
    jq_args_str(a, key);
}

/* Reads every reply of a pipe; the last one (EXEC's) is kept in *last
 * when not NULL. Returns 0, or -1 with err at the first error reply. */
static int read_all(jq_pipe_t *p, redisReply **last, char *err, size_t errlen) {
    int rc = 0;
    redisReply *r;
    if (last) *last = NULL;
    while (p->read < p->sent && (r = jq_pipe_reply(p, err, errlen))) {
        char why[JQ_KEY_MAX];
        if (rc == 0 &&
            (jq_reply_ok(r, why, sizeof(why)) < 0 ||
             (r->type == REDIS_REPLY_ARRAY && jq_reply_each_ok(r, why, sizeof(why)) < 0))) {
            jq_seterr(err, errlen, "%s", why);
            rc = -1;
        }
        if (last && p->read == p->sent)
            *last = r;
        else
            freeReplyObject(r);
    }
    if (jq_pipe_end(p) < 0) rc = -1;
    if (rc < 0 && last && *last) {
        freeReplyObject(*last);
        *last = NULL;
    }
    return rc;
}

int jq_client_schedule_add(jq_client_t *c, const jq_schedule_t *s, const char *type,
                           const char *payload, size_t len, const jq_enqueue_opts_t *o,
                           long long *first_ms, char *err, size_t errlen) {
    jq_enqueue_opts_t defaults;
    if (!o) {
        jq_enqueue_opts_init(&defaults);
        o = &defaults;
    }
    const char *queue = s->queue ? s->queue : JQ_QUEUE_DEFAULT;
    if (check_schedule(queue, s->name, err, errlen) < 0 ||
        jq_enqueue_check(type, payload, len, o, queue, err, errlen) < 0)
        return -1;
    long long first = first_tick(s, (long long)jq_now_ms(), err, errlen);
    if (first < 0) return -1;
    char queues[JQ_KEY_MAX];
    jq_key_global(queues, sizeof(queues), c->prefix, "queues");
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "SADD");
    jq_args_str(&p.a, queues);
    jq_args_str(&p.a, queue);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "MULTI");
    jq_pipe_send(&p, err, errlen);
    /* A replaced schedule keeps nothing of the old one. */
    jq_args_str(&p.a, "DEL");
    jq_args_key(&p.a, c, queue, "schedule", s->name);
    add_job_key(&p.a, c, queue, s->name);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "HSET");
    jq_args_key(&p.a, c, queue, "schedule", s->name);
    if (s->every_ms > 0) {
        jq_args_str(&p.a, "every");
        jq_args_ll(&p.a, s->every_ms);
    } else {
        jq_args_str(&p.a, "cron");
        jq_args_str(&p.a, s->cron);
        if (s->tz && *s->tz) {
            jq_args_str(&p.a, "tz");
            jq_args_str(&p.a, s->tz);
        }
    }
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "HSET");
    add_job_key(&p.a, c, queue, s->name);
    jq_enqueue_fields(&p.a, type, payload, len, o);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "ZADD");
    jq_args_key(&p.a, c, queue, "schedules", NULL);
    jq_args_ll(&p.a, first);
    jq_args_str(&p.a, s->name);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "EXEC");
    jq_pipe_send(&p, err, errlen);
    if (read_all(&p, NULL, err, errlen) < 0) return -1;
    if (first_ms) *first_ms = first;
    return 0;
}

int jq_client_schedule_rm(jq_client_t *c, const char *queue, const char *name, char *err,
                          size_t errlen) {
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (check_schedule(queue, name, err, errlen) < 0) return -1;
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    jq_args_str(&p.a, "MULTI");
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "ZREM");
    jq_args_key(&p.a, c, queue, "schedules", NULL);
    jq_args_str(&p.a, name);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "DEL");
    jq_args_key(&p.a, c, queue, "schedule", name);
    add_job_key(&p.a, c, queue, name);
    jq_pipe_send(&p, err, errlen);
    jq_args_str(&p.a, "EXEC");
    jq_pipe_send(&p, err, errlen);
    redisReply *exec;
    if (read_all(&p, &exec, err, errlen) < 0) return -1;
    int found = exec && exec->type == REDIS_REPLY_ARRAY && exec->elements == 2 &&
                (exec->element[0]->integer > 0 || exec->element[1]->integer > 0);
    freeReplyObject(exec);
    return found;
}

int jq_client_schedule_pause(jq_client_t *c, const char *queue, const char *name, int pause,
                             char *err, size_t errlen) {
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (check_schedule(queue, name, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EXISTS");
    jq_args_key(&a, c, queue, "schedule", name);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    if (n == 0) return 0;
    jq_args_init(&a);
    jq_args_str(&a, pause ? "HSET" : "HDEL");
    jq_args_key(&a, c, queue, "schedule", name);
    jq_args_str(&a, "paused");
    if (pause) jq_args_str(&a, "1");
    int rc = jq_client_do(c, &a, err, errlen);
    jq_args_destroy(&a);
    return rc < 0 ? -1 : 1;
}

static char *dup_reply(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? jq_memdup(r->str, r->len) : NULL;
}

static long long ll_of(const redisReply *r) {
    long long v = 0;
    return r && jq_reply_ll(r, &v) == 0 ? v : 0;
}

/* Fills one entry from its schedule hash's HGETALL. */
static void fill_info(jq_schedule_info_t *s, const redisReply *h) {
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        if (jq_reply_is(f, "every"))
            s->every_ms = ll_of(v);
        else if (jq_reply_is(f, "cron"))
            s->cron = dup_reply(v);
        else if (jq_reply_is(f, "tz"))
            s->tz = dup_reply(v);
        else if (jq_reply_is(f, "paused"))
            s->paused = jq_reply_is(v, "1");
        else if (jq_reply_is(f, "last_tick"))
            s->last_tick_ms = ll_of(v);
        else if (jq_reply_is(f, "last_fired_at"))
            s->last_fired_ms = ll_of(v);
        else if (jq_reply_is(f, "last_job"))
            s->last_job = dup_reply(v);
        else if (jq_reply_is(f, "error"))
            s->error = dup_reply(v);
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const jq_schedule_info_t *)a)->name, ((const jq_schedule_info_t *)b)->name);
}

int jq_client_schedule_list(jq_client_t *c, const char *queue, jq_schedule_info_t **out, size_t *n,
                            char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    if (!queue) queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "ZRANGE");
    jq_args_key(&a, c, queue, "schedules", NULL);
    jq_args_str(&a, "0");
    jq_args_str(&a, "-1");
    jq_args_str(&a, "WITHSCORES");
    redisReply *z = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!z) return -1;
    size_t count = z->type == REDIS_REPLY_ARRAY ? z->elements / 2 : 0;
    jq_schedule_info_t *v = calloc(count ? count : 1, sizeof(*v));
    if (!v) {
        freeReplyObject(z);
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < count; i++) {
        v[i].queue = jq_memdup(queue, strlen(queue));
        v[i].name = dup_reply(z->element[2 * i]);
        v[i].next_ms = ll_of(z->element[2 * i + 1]);
        jq_args_str(&p.a, "HGETALL");
        jq_args_key(&p.a, c, queue, "schedule", v[i].name);
        jq_pipe_send(&p, err, errlen);
        jq_args_str(&p.a, "HGET");
        add_job_key(&p.a, c, queue, v[i].name);
        jq_args_str(&p.a, "type");
        jq_pipe_send(&p, err, errlen);
    }
    freeReplyObject(z);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        redisReply *h = jq_pipe_reply(&p, err, errlen);
        redisReply *t = h ? jq_pipe_reply(&p, err, errlen) : NULL;
        if (!h || !t || jq_reply_ok(h, err, errlen) < 0 || jq_reply_ok(t, err, errlen) < 0)
            rc = -1;
        else {
            fill_info(&v[i], h);
            v[i].type = dup_reply(t);
        }
        if (h) freeReplyObject(h);
        if (t) freeReplyObject(t);
    }
    if (jq_pipe_end(&p) < 0) rc = -1;
    if (rc < 0) {
        jq_schedule_infos_free(v, count);
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (!v[i].name) v[i].name = jq_memdup("", 0);
    qsort(v, count, sizeof(*v), by_name);
    *out = v;
    *n = count;
    return 0;
}

void jq_schedule_infos_free(jq_schedule_info_t *v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].queue);
        free(v[i].name);
        free(v[i].cron);
        free(v[i].tz);
        free(v[i].type);
        free(v[i].last_job);
        free(v[i].error);
    }
    free(v);
}
