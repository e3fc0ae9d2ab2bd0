/* A snapshot of queues and workers (PROTOCOL §7) for everything that
 * watches: `jobq stats`, `jobq top`, /metrics, the dashboard. Two
 * pipelined round trips whatever the number of queues and workers: one for
 * every queue's figures, minute counters and latency hash together with the
 * worker set, one for the workers' hashes. */

#include <json.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "job.h"
#include "keys.h"
#include "jobq/watch.h"
#include "watch_int.h"

static const long long lat_bounds_ms[JQ_LAT_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

long long jq_latency_bound_ms(int i) {
    return i >= 0 && i < JQ_LAT_BUCKETS - 1 ? lat_bounds_ms[i] : -1;
}

/* ---- latency hash: <kind>:le:<ms>, <kind>:count, <kind>:sum_us ---- */

static void latency_field(jq_latency_t *l, const char *rest, const redisReply *v) {
    long long n = 0;
    if (jq_reply_ll(v, &n) < 0) return;
    if (strcmp(rest, "count") == 0) {
        l->count = n;
    } else if (strcmp(rest, "sum_us") == 0) {
        l->sum_us = n;
    } else if (strncmp(rest, "le:", 3) == 0) {
        if (strcmp(rest + 3, "inf") == 0) {
            l->bucket[JQ_LAT_BUCKETS - 1] = n;
            return;
        }
        char *end;
        long long b = strtoll(rest + 3, &end, 10);
        for (int i = 0; i < JQ_LAT_BUCKETS - 1 && !*end; i++)
            if (lat_bounds_ms[i] == b) l->bucket[i] = n;
    }
}

static void read_latency(const redisReply *h, jq_queue_watch_t *q) {
    if (!h || h->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i];
        if (f->type != REDIS_REPLY_STRING) continue;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)f->len, f->str);
        if (strncmp(name, "wait:", 5) == 0)
            latency_field(&q->wait, name + 5, h->element[i + 1]);
        else if (strncmp(name, "run:", 4) == 0)
            latency_field(&q->run, name + 4, h->element[i + 1]);
    }
}

double jq_latency_quantile(const jq_latency_t *l, double q) {
    long long total = 0;
    for (int i = 0; i < JQ_LAT_BUCKETS; i++) total += l->bucket[i];
    if (total == 0) return -1;
    double rank = q * (double)total, seen = 0;
    for (int i = 0; i < JQ_LAT_BUCKETS; i++) {
        double n = (double)l->bucket[i];
        if (seen + n >= rank && n > 0) {
            if (i == JQ_LAT_BUCKETS - 1) return (double)lat_bounds_ms[JQ_LAT_BUCKETS - 2];
            double lo = i ? (double)lat_bounds_ms[i - 1] : 0, hi = (double)lat_bounds_ms[i];
            return lo + (hi - lo) * (rank - seen) / n;
        }
        seen += n;
    }
    return (double)lat_bounds_ms[JQ_LAT_BUCKETS - 2];
}

/* ---- per-minute counters ---- */

static void read_minute(const redisReply *r, long long *processed, long long *failed) {
    *processed = *failed = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return;
    jq_reply_ll(r->element[0], processed);
    jq_reply_ll(r->element[1], failed);
}

/* Over the last 60 s: the current minute so far plus the part of the
 * previous minute that still lies inside the window. */
static void rates(jq_queue_watch_t *q, int64_t now_ms) {
    double frac = (double)(now_ms % 60000) / 60000.0;
    q->rate = ((double)q->processed_min[0] + (double)q->processed_min[1] * (1 - frac)) / 60.0;
    q->fail_rate = ((double)q->failed_min[0] + (double)q->failed_min[1] * (1 - frac)) / 60.0;
}

/* ---- workers ---- */

static void worker_field(jq_worker_watch_t *w, const redisReply *f, const redisReply *v) {
    static const struct {
        const char *name;
        size_t off;
    } nums[] = {
        {"pid", offsetof(jq_worker_watch_t, pid)},
        {"master_pid", offsetof(jq_worker_watch_t, master_pid)},
        {"started_at", offsetof(jq_worker_watch_t, started_at)},
        {"processed", offsetof(jq_worker_watch_t, processed)},
        {"failed", offsetof(jq_worker_watch_t, failed)},
        {"busy_io", offsetof(jq_worker_watch_t, busy_io)},
        {"busy_cpu", offsetof(jq_worker_watch_t, busy_cpu)},
        {"threads", offsetof(jq_worker_watch_t, threads)},
        {"cpu_backlog", offsetof(jq_worker_watch_t, cpu_backlog)},
        {"rss_bytes", offsetof(jq_worker_watch_t, rss_bytes)},
        {"cpu_ms", offsetof(jq_worker_watch_t, cpu_ms)},
        {"open_fds", offsetof(jq_worker_watch_t, open_fds)},
        {"loop_lag_us", offsetof(jq_worker_watch_t, loop_lag_us)},
    };
    if (v->type != REDIS_REPLY_STRING) return;
    if (jq_reply_is(f, "host")) {
        snprintf(w->host, sizeof(w->host), "%.*s", (int)v->len, v->str);
    } else if (jq_reply_is(f, "queues")) {
        snprintf(w->queues, sizeof(w->queues), "%.*s", (int)v->len, v->str);
    } else if (jq_reply_is(f, "draining")) {
        w->draining = v->len == 1 && v->str[0] == '1';
    } else {
        for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
            if (jq_reply_is(f, nums[i].name))
                jq_reply_ll(v, (long long *)((char *)w + nums[i].off));
    }
}

/* Reads the hash of every worker in the ZRANGE reply `set` (member,
 * score, ...) in one pipelined round trip; a worker whose hash expired is
 * left out. */
static int read_workers(jq_client_t *c, const redisReply *set, jq_watch_t *w, char *err,
                        size_t errlen) {
    if (!set || set->type != REDIS_REPLY_ARRAY || set->elements < 2) return 0;
    size_t n = set->elements / 2;
    w->workers = calloc(n, sizeof(*w->workers));
    if (!w->workers) {
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = set->element[2 * i];
        jq_args_str(&p.a, "HGETALL");
        char key[512];
        snprintf(key, sizeof(key), "%s:worker:%.*s", c->prefix, (int)id->len, id->str);
        jq_args_dup(&p.a, key, strlen(key));
        jq_pipe_send(&p, err, errlen);
    }
    redisReply *h;
    for (size_t i = 0; i < n && (h = jq_pipe_reply(&p, err, errlen)); i++) {
        if (h->type == REDIS_REPLY_ARRAY && h->elements >= 2) {
            jq_worker_watch_t *ww = &w->workers[w->nworkers++];
            const redisReply *id = set->element[2 * i], *score = set->element[2 * i + 1];
            snprintf(ww->id, sizeof(ww->id), "%.*s", (int)id->len, id->str);
            jq_reply_ll(score, &ww->last_seen_ms);
            for (size_t k = 0; k + 1 < h->elements; k += 2)
                worker_field(ww, h->element[k], h->element[k + 1]);
        }
        freeReplyObject(h);
    }
    return jq_pipe_end(&p);
}

static int cmp_worker(const void *x, const void *y) {
    return strcmp(((const jq_worker_watch_t *)x)->id, ((const jq_worker_watch_t *)y)->id);
}

/* ---- the snapshot ---- */

enum { Q_MIN0, Q_MIN1, Q_LAT, Q_NSCHED, Q_SCHED, Q_LIMIT, Q_LEASES, Q_BUCKET, Q_BACKOFF, Q_EXTRA };

/* A queue's limit (PROTOCOL §9): its hash, the leases not expired at the
 * snapshot's time, the rate's bucket and the backoff's TTL. */
static void send_limit(jq_pipe_t *p, const char *queue, int64_t now, char *err, size_t errlen) {
    jq_args_str(&p->a, "HMGET");
    jq_args_key(&p->a, p->c, queue, "limit", NULL);
    jq_args_str(&p->a, "rate");
    jq_args_str(&p->a, "period_ms");
    jq_args_str(&p->a, "concurrency");
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "ZCOUNT");
    jq_args_key(&p->a, p->c, queue, "leases", NULL);
    jq_args_ll(&p->a, now);
    jq_args_str(&p->a, "+inf");
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "HMGET");
    jq_args_key(&p->a, p->c, queue, "bucket", NULL);
    jq_args_str(&p->a, "tokens");
    jq_args_str(&p->a, "at");
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "PTTL");
    jq_args_key(&p->a, p->c, queue, "backoff", NULL);
    jq_pipe_send(p, err, errlen);
}

/* An HMGET value as a positive integer (as the workers take it), or 0. */
static long long positive(const redisReply *v) {
    long long n = 0;
    if (v->type != REDIS_REPLY_STRING || jq_reply_ll(v, &n) < 0 || n < 1) return 0;
    return n;
}

static double reply_double(const redisReply *v, double dflt) {
    if (v->type != REDIS_REPLY_STRING) return dflt;
    char *end;
    double d = strtod(v->str, &end);
    return end == v->str ? dflt : d;
}

/* The limit's settings, leases and backoff, and whether it holds the
 * ready jobs back now: the rate's bucket refilled to now as the workers'
 * script does (its burst, limit.c), the slots all leased, or the backoff
 * alive. */
static void read_limit(redisReply **r, jq_queue_watch_t *q, int64_t now) {
    const redisReply *h = r[Q_LIMIT], *b = r[Q_BUCKET];
    if (h->type == REDIS_REPLY_ARRAY && h->elements == 3) {
        q->limit_rate = positive(h->element[0]);
        q->limit_period_ms = positive(h->element[1]);
        q->limit_concurrency = positive(h->element[2]);
        if (!q->limit_rate || !q->limit_period_ms) q->limit_rate = q->limit_period_ms = 0;
    }
    jq_reply_ll(r[Q_LEASES], &q->leases);
    if (r[Q_BACKOFF]->type == REDIS_REPLY_INTEGER && r[Q_BACKOFF]->integer > 0)
        q->backoff_ms = r[Q_BACKOFF]->integer;
    if (q->limit_concurrency && q->leases >= q->limit_concurrency)
        q->blocked |= JQ_BLOCKED_CONCURRENCY;
    if (q->limit_rate && b->type == REDIS_REPLY_ARRAY && b->elements == 2) {
        double rate = (double)q->limit_rate, per = (double)q->limit_period_ms;
        double burst = rate * 200 / per < 1 ? 1 : rate * 200 / per > rate ? rate : rate * 200 / per;
        double tokens = reply_double(b->element[0], burst), at = reply_double(b->element[1], 0);
        if (now > at) tokens += ((double)now - at) * rate / per;
        if ((tokens < burst ? tokens : burst) < 1) q->blocked |= JQ_BLOCKED_RATE;
    }
    if (q->backoff_ms) q->blocked |= JQ_BLOCKED_BACKOFF;
    q->held_back = q->blocked ? q->s.ready : 0;
}

static void send_queue(jq_pipe_t *p, const char *queue, int64_t now, char *err, size_t errlen) {
    int64_t minute = now / 60000;
    jq_stats_send(p, queue, err, errlen);
    for (int i = 0; i < 2; i++) {
        char what[64];
        snprintf(what, sizeof(what), "stats:%lld", (long long)(minute - i));
        jq_args_str(&p->a, "HMGET");
        jq_args_key(&p->a, p->c, queue, what, NULL);
        jq_args_str(&p->a, "processed");
        jq_args_str(&p->a, "failed");
        jq_pipe_send(p, err, errlen);
    }
    jq_args_str(&p->a, "HGETALL");
    jq_args_key(&p->a, p->c, queue, "latency", NULL);
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "ZCARD");
    jq_args_key(&p->a, p->c, queue, "schedules", NULL);
    jq_pipe_send(p, err, errlen);
    jq_args_str(&p->a, "ZRANGE");
    jq_args_key(&p->a, p->c, queue, "schedules", NULL);
    jq_args_str(&p->a, "0");
    jq_args_ll(&p->a, JQ_WATCH_SCHEDULES - 1);
    jq_args_str(&p->a, "WITHSCORES");
    jq_pipe_send(p, err, errlen);
    send_limit(p, queue, now, err, errlen);
}

/* The schedules' count, the first few by next tick, and the lag. */
static void read_schedules(const redisReply *n, const redisReply *z, jq_queue_watch_t *q,
                           int64_t now) {
    jq_reply_ll(n, &q->schedules);
    for (size_t i = 0;
         z->type == REDIS_REPLY_ARRAY && i + 1 < z->elements && q->nsched < JQ_WATCH_SCHEDULES;
         i += 2) {
        const redisReply *name = z->element[i];
        if (name->type != REDIS_REPLY_STRING) continue;
        snprintf(q->sched[q->nsched].name, sizeof(q->sched[0].name), "%.*s", (int)name->len,
                 name->str);
        long long next =
            (long long)strtod(z->element[i + 1]->str ? z->element[i + 1]->str : "0", NULL);
        q->sched[q->nsched++].next_ms = next;
        if (next > 0 && next < now && now - next > q->sched_lag_ms) q->sched_lag_ms = now - next;
    }
}

static int collect_queue(jq_pipe_t *p, jq_queue_watch_t *q, const char *queue, int64_t now,
                         char *err, size_t errlen) {
    /* Its extras are read even when its stats failed, to stay in step. */
    int rc = jq_stats_collect(p, queue, &q->s, &q->cancelled, err, errlen);
    redisReply *r[Q_EXTRA] = {0};
    for (int i = 0; i < Q_EXTRA; i++) {
        r[i] = jq_pipe_reply(p, err, errlen);
        if (!r[i] || (rc == 0 && jq_reply_ok(r[i], err, errlen) < 0)) rc = -1;
        if (!r[i]) break;
    }
    if (rc == 0) {
        read_minute(r[Q_MIN0], &q->processed_min[0], &q->failed_min[0]);
        read_minute(r[Q_MIN1], &q->processed_min[1], &q->failed_min[1]);
        read_latency(r[Q_LAT], q);
        read_schedules(r[Q_NSCHED], r[Q_SCHED], q, now);
        read_limit(r, q, now);
    }
    for (int i = 0; i < Q_EXTRA; i++)
        if (r[i]) freeReplyObject(r[i]);
    return rc;
}

/* Sends every queue's commands and the worker set's ZRANGE in one
 * pipeline, then reads them in the same order. */
static int read_queues(jq_client_t *c, const char *const *names, size_t n, jq_watch_t *w,
                       redisReply **set, char *err, size_t errlen) {
    w->queues = n ? calloc(n, sizeof(*w->queues)) : NULL;
    if (n && !w->queues) {
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    jq_pipe_t p;
    jq_pipe_init(&p, c);
    for (size_t i = 0; i < n; i++) send_queue(&p, names[i], w->at_ms, err, errlen);
    char key[JQ_KEY_MAX];
    jq_key_global(key, sizeof(key), c->prefix, "workers");
    jq_args_str(&p.a, "ZRANGE");
    jq_args_str(&p.a, key);
    jq_args_str(&p.a, "0");
    jq_args_str(&p.a, "-1");
    jq_args_str(&p.a, "WITHSCORES");
    jq_pipe_send(&p, err, errlen);
    int rc = 0;
    for (size_t i = 0; i < n && !p.broken; i++) {
        jq_queue_watch_t *q = &w->queues[w->nqueues];
        /* A failed reply of one queue still leaves its others to read. */
        if (collect_queue(&p, q, names[i], w->at_ms, err, errlen) < 0) rc = -1;
        if (p.broken) break;
        rates(q, w->at_ms);
        w->nqueues++;
    }
    *set = jq_pipe_reply(&p, err, errlen);
    return jq_pipe_end(&p) < 0 ? -1 : rc;
}

int jq_watch_read(jq_client_t *c, const char *queue, jq_watch_t *w, char *err, size_t errlen) {
    memset(w, 0, sizeof(*w));
    w->at_ms = jq_now_ms();
    if (queue && jq_check_name("queue name", queue, err, errlen) < 0) return -1;
    if (jq_client_ready(c, err, errlen) < 0) return -1;
    char **all = NULL;
    size_t nall = 0;
    if (!queue && jq_client_queues(c, &all, &nall, err, errlen) < 0) return -1;
    /* Foreign members of <p>:queues cannot name keys: skip them. */
    const char **names = calloc(nall ? nall : 1, sizeof(*names));
    size_t n = 0;
    if (!names) {
        jq_client_queues_free(all, nall);
        jq_seterr(err, errlen, "out of memory");
        return -1;
    }
    if (queue) names[n++] = queue;
    for (size_t i = 0; i < nall; i++)
        if (jq_name_valid(all[i], strlen(all[i]))) names[n++] = all[i];
    redisReply *set = NULL;
    int rc = read_queues(c, names, n, w, &set, err, errlen);
    if (rc == 0) rc = read_workers(c, set, w, err, errlen);
    if (set) freeReplyObject(set);
    if (w->nworkers > 1) qsort(w->workers, w->nworkers, sizeof(*w->workers), cmp_worker);
    free(names);
    jq_client_queues_free(all, nall);
    return rc;
}

void jq_watch_destroy(jq_watch_t *w) {
    free(w->queues);
    free(w->workers);
    memset(w, 0, sizeof(*w));
}

/* ---- a broken queue ---- */

int jq_watch_broken(jq_client_t *c, const char *queue, jq_broken_t *b) {
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HMGET");
    jq_args_key(&a, c, queue, "broken", NULL);
    jq_args_str(&a, "error");
    jq_args_str(&a, "since");
    jq_args_str(&a, "worker");
    redisReply *r = jq_client_run(c, &a, NULL, 0);
    jq_args_destroy(&a);
    int broken = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                 r->element[0]->type == REDIS_REPLY_STRING;
    if (broken) {
        redisReply **e = r->element;
        snprintf(b->error, sizeof(b->error), "%.*s", (int)e[0]->len, e[0]->str);
        b->since = e[1]->type == REDIS_REPLY_STRING ? atoll(e[1]->str) : 0;
        snprintf(b->worker, sizeof(b->worker), "%.*s",
                 e[2]->type == REDIS_REPLY_STRING ? (int)e[2]->len : 1,
                 e[2]->type == REDIS_REPLY_STRING ? e[2]->str : "?");
    }
    if (r) freeReplyObject(r);
    return broken;
}

/* ---- JSON (the stable shape of `jobq stats --json`, docs/CLI.md) ---- */

static json_object *jnum(double v, int decimals) {
    char s[64];
    snprintf(s, sizeof(s), "%.*f", decimals, v);
    return json_object_new_double_s(v, s);
}

static json_object *latency_json(const jq_latency_t *l) {
    json_object *o = json_object_new_object(), *b = json_object_new_array();
    json_object_object_add(o, "count", json_object_new_int64(l->count));
    json_object_object_add(o, "sum_us", json_object_new_int64(l->sum_us));
    static const double qs[] = {0.5, 0.9, 0.99};
    static const char *const names[] = {"p50_ms", "p90_ms", "p99_ms"};
    for (int i = 0; i < 3; i++) {
        double v = jq_latency_quantile(l, qs[i]);
        json_object_object_add(o, names[i], v < 0 ? NULL : jnum(v, 3));
    }
    for (int i = 0; i < JQ_LAT_BUCKETS; i++) {
        json_object *pair = json_object_new_array();
        json_object_array_add(pair, i < JQ_LAT_BUCKETS - 1 ? json_object_new_int64(lat_bounds_ms[i])
                                                           : json_object_new_string("inf"));
        json_object_array_add(pair, json_object_new_int64(l->bucket[i]));
        json_object_array_add(b, pair);
    }
    json_object_object_add(o, "buckets", b);
    return o;
}

/* null when the queue has no limit and no backoff. */
static json_object *limit_json(const jq_queue_watch_t *q) {
    if (!q->limit_rate && !q->limit_concurrency && !q->backoff_ms) return NULL;
    json_object *o = json_object_new_object(), *by = json_object_new_array();
    json_object_object_add(o, "rate", q->limit_rate ? json_object_new_int64(q->limit_rate) : NULL);
    json_object_object_add(o, "period_ms",
                           q->limit_rate ? json_object_new_int64(q->limit_period_ms) : NULL);
    json_object_object_add(o, "concurrency",
                           q->limit_concurrency ? json_object_new_int64(q->limit_concurrency)
                                                : NULL);
    json_object_object_add(o, "leases", json_object_new_int64(q->leases));
    json_object_object_add(o, "backoff_ms", json_object_new_int64(q->backoff_ms));
    static const char *const names[] = {"concurrency", "rate", "backoff"};
    for (int i = 0; i < 3; i++)
        if (q->blocked & (1 << i)) json_object_array_add(by, json_object_new_string(names[i]));
    json_object_object_add(o, "blocked_by", by);
    return o;
}

static json_object *queue_json(const jq_queue_watch_t *q, long long at) {
    const jq_queue_stats_t *s = &q->s;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "queue", json_object_new_string(s->queue));
    const struct {
        const char *k;
        long long v;
    } ints[] = {{"length", s->length},       {"ready", s->ready},     {"running", s->running},
                {"scheduled", s->scheduled}, {"dead", s->dead},       {"processed", s->processed},
                {"failed", s->failed},       {"retried", s->retried}, {"dead_total", s->dead_total},
                {"cancelled", q->cancelled}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_object_object_add(o, ints[i].k, json_object_new_int64(ints[i].v));
        if (i == 4) json_object_object_add(o, "paused", json_object_new_boolean(s->paused));
    }
    json_object_object_add(o, "jobs_per_s", jnum(q->rate, 3));
    json_object_object_add(o, "failed_per_s", jnum(q->fail_rate, 3));
    json_object_object_add(o, "wait", latency_json(&q->wait));
    json_object_object_add(o, "run", latency_json(&q->run));
    json_object *sc = json_object_new_array();
    for (int i = 0; i < q->nsched; i++) {
        json_object *one = json_object_new_object();
        long long next = q->sched[i].next_ms;
        json_object_object_add(one, "name", json_object_new_string(q->sched[i].name));
        json_object_object_add(one, "next_ms", next > 0 ? json_object_new_int64(next) : NULL);
        json_object_object_add(one, "lag_ms",
                               json_object_new_int64(next > 0 && next < at ? at - next : 0));
        json_object_array_add(sc, one);
    }
    json_object_object_add(o, "schedules", json_object_new_int64(q->schedules));
    json_object_object_add(o, "schedule_lag_ms", json_object_new_int64(q->sched_lag_ms));
    json_object_object_add(o, "next_schedules", sc);
    json_object_object_add(o, "limit", limit_json(q));
    json_object_object_add(o, "held_back", json_object_new_int64(q->held_back));
    return o;
}

static json_object *worker_json(const jq_worker_watch_t *w) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(w->id));
    json_object_object_add(o, "host", json_object_new_string(w->host));
    json_object *qs = json_object_new_array();
    for (const char *p = w->queues; *p;) {
        size_t len = strcspn(p, ",");
        if (len) json_object_array_add(qs, json_object_new_string_len(p, (int)len));
        p += len + (p[len] == ',');
    }
    json_object_object_add(o, "queues", qs);
    const struct {
        const char *k;
        long long v;
    } ints[] = {{"pid", w->pid},
                {"master_pid", w->master_pid},
                {"started_at", w->started_at},
                {"last_seen", w->last_seen_ms},
                {"processed", w->processed},
                {"failed", w->failed},
                {"busy_io", w->busy_io},
                {"busy_cpu", w->busy_cpu},
                {"threads", w->threads},
                {"cpu_backlog", w->cpu_backlog},
                {"rss_bytes", w->rss_bytes},
                {"cpu_ms", w->cpu_ms},
                {"open_fds", w->open_fds},
                {"loop_lag_us", w->loop_lag_us}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        json_object_object_add(o, ints[i].k, json_object_new_int64(ints[i].v));
    json_object_object_add(o, "draining", json_object_new_boolean(w->draining));
    return o;
}

json_object *jq_watch_to_json(const jq_watch_t *w) {
    json_object *root = json_object_new_object(), *qs = json_object_new_array(),
                *ws = json_object_new_array();
    json_object_object_add(root, "at", json_object_new_int64(w->at_ms));
    for (size_t i = 0; i < w->nqueues; i++)
        json_object_array_add(qs, queue_json(&w->queues[i], w->at_ms));
    for (size_t i = 0; i < w->nworkers; i++) json_object_array_add(ws, worker_json(&w->workers[i]));
    json_object_object_add(root, "queues", qs);
    json_object_object_add(root, "workers", ws);
    return root;
}

int jq_watch_print_json(json_object *root, FILE *out) {
    int rc = fprintf(out, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN)) < 0
                 ? -1
                 : 0;
    json_object_put(root);
    return rc;
}

int jq_watch_json(const jq_watch_t *w, FILE *out) {
    return jq_watch_print_json(jq_watch_to_json(w), out);
}
