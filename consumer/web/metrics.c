/* /metrics: see metrics.h. The Redis read runs on libuv's threadpool
 * through libjobq's blocking client; everything else, the text included,
 * runs on the master's loop. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobq/watch.h"
#include "log.h"
#include "metrics.h"

#define READ_TIMEOUT_MS 4000

struct jq_metrics {
    uv_loop_t *loop;
    const jq_options_t *opt;
    jq_metrics_local_fn local;
    void *local_data;
    char host[256];
    long long pid;
    /* The read in flight. client, snap and err belong to the worker
     * thread between uv_queue_work and on_read_done. */
    uv_work_t work;
    int busy;
    jq_client_t *client;
    jq_watch_t snap;
    int rc;
    char err[256];
    jq_http_req_t *waiting[JQ_HTTPD_MAX_CONNS]; /* answered by the next read's end */
    int nwaiting;
    int closing;
};

/* ---- the text format ---- */

static void family(FILE *o, const char *name, const char *type, const char *help) {
    fprintf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, quote and newline escaped (worker ids come
 * from Redis, where anyone could have written them). */
static void label(FILE *o, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(o, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", o);
        else
            fputc(*v, o);
    }
}

typedef long long (*queue_get_fn)(const jq_queue_watch_t *q);
static long long q_ready(const jq_queue_watch_t *q) { return q->s.ready; }
static long long q_running(const jq_queue_watch_t *q) { return q->s.running; }
static long long q_scheduled(const jq_queue_watch_t *q) { return q->s.scheduled; }
static long long q_dead(const jq_queue_watch_t *q) { return q->s.dead; }
static long long q_paused(const jq_queue_watch_t *q) { return q->s.paused; }
static long long q_processed(const jq_queue_watch_t *q) { return q->s.processed; }
static long long q_failed(const jq_queue_watch_t *q) { return q->s.failed; }
static long long q_retried(const jq_queue_watch_t *q) { return q->s.retried; }
static long long q_dead_total(const jq_queue_watch_t *q) { return q->s.dead_total; }
static long long q_cancelled(const jq_queue_watch_t *q) { return q->cancelled; }
static long long q_schedules(const jq_queue_watch_t *q) { return q->schedules; }
static long long q_held_back(const jq_queue_watch_t *q) { return q->held_back; }
static long long q_leases(const jq_queue_watch_t *q) { return q->leases; }

static const struct {
    const char *name, *type, *help;
    queue_get_fn get;
} queue_series[] = {
    {"jobq_queue_ready", "gauge", "Jobs in the stream not yet taken by a worker (the group's lag).",
     q_ready},
    {"jobq_queue_running", "gauge",
     "Jobs taken by a worker and not finished (the group's pending count).", q_running},
    {"jobq_queue_scheduled", "gauge", "Delayed jobs and jobs waiting for a retry.", q_scheduled},
    {"jobq_queue_dead", "gauge", "Jobs in the dead set now.", q_dead},
    {"jobq_queue_paused", "gauge", "1 while the queue is paused.", q_paused},
    {"jobq_jobs_processed_total", "counter", "Jobs done.", q_processed},
    {"jobq_jobs_failed_total", "counter", "Attempts that failed.", q_failed},
    {"jobq_jobs_retried_total", "counter", "Failed attempts scheduled for a retry.", q_retried},
    {"jobq_jobs_dead_total", "counter", "Jobs that went to the dead set.", q_dead_total},
    {"jobq_jobs_cancelled_total", "counter", "Jobs that ended cancelled.", q_cancelled},
    {"jobq_schedules", "gauge", "Schedules of the queue (PROTOCOL §13).", q_schedules},
    {"jobq_queue_held_back", "gauge",
     "Ready jobs a limit keeps from starting now: its concurrency's slots all leased, its rate's "
     "bucket empty, or its backoff alive (PROTOCOL §9); 0 otherwise.",
     q_held_back},
    {"jobq_queue_limit_leases", "gauge",
     "Concurrency leases held now by every worker (PROTOCOL §9; 0 without a concurrency).",
     q_leases},
};

/* A queue's limit settings, only for the queues that have that limit. */
static void limits_text(FILE *o, const jq_watch_t *w) {
    family(o, "jobq_queue_limit_concurrency", "gauge",
           "The queue's concurrency limit (jobq limit set --concurrency).");
    for (size_t i = 0; i < w->nqueues; i++)
        if (w->queues[i].limit_concurrency)
            fprintf(o, "jobq_queue_limit_concurrency{queue=\"%s\"} %lld\n", w->queues[i].s.queue,
                    w->queues[i].limit_concurrency);
    family(o, "jobq_queue_limit_rate_per_second", "gauge",
           "The queue's rate limit in jobs per second (jobq limit set --rate).");
    for (size_t i = 0; i < w->nqueues; i++)
        if (w->queues[i].limit_rate)
            fprintf(o, "jobq_queue_limit_rate_per_second{queue=\"%s\"} %g\n", w->queues[i].s.queue,
                    (double)w->queues[i].limit_rate * 1000.0 /
                        (double)w->queues[i].limit_period_ms);
}

static void histogram(FILE *o, const jq_watch_t *w, const char *name, const char *help, int run) {
    family(o, name, "histogram", help);
    for (size_t i = 0; i < w->nqueues; i++) {
        const jq_queue_watch_t *q = &w->queues[i];
        const jq_latency_t *l = run ? &q->run : &q->wait;
        long long cum = 0;
        for (int b = 0; b < JQ_LAT_BUCKETS; b++) {
            cum += l->bucket[b];
            long long le = jq_latency_bound_ms(b);
            if (le >= 0)
                fprintf(o, "%s_bucket{queue=\"%s\",le=\"%g\"} %lld\n", name, q->s.queue,
                        le / 1000.0, cum);
            else
                fprintf(o, "%s_bucket{queue=\"%s\",le=\"+Inf\"} %lld\n", name, q->s.queue, cum);
        }
        /* _count is the +Inf bucket, so that the two always agree. */
        fprintf(o, "%s_sum{queue=\"%s\"} %.6f\n%s_count{queue=\"%s\"} %lld\n", name, q->s.queue,
                l->sum_us / 1e6, name, q->s.queue, cum);
    }
}

static void queues_text(FILE *o, const jq_watch_t *w) {
    for (size_t k = 0; k < sizeof(queue_series) / sizeof(queue_series[0]); k++) {
        family(o, queue_series[k].name, queue_series[k].type, queue_series[k].help);
        for (size_t i = 0; i < w->nqueues; i++)
            fprintf(o, "%s{queue=\"%s\"} %lld\n", queue_series[k].name, w->queues[i].s.queue,
                    queue_series[k].get(&w->queues[i]));
    }
    /* A tick is fired within about 250 ms while a consumer serves the
     * queue: a lag past a few seconds means none does, or all stall. */
    family(o, "jobq_schedule_lag_seconds", "gauge",
           "How late the queue's most overdue schedule tick is (0: none is due).");
    for (size_t i = 0; i < w->nqueues; i++)
        fprintf(o, "jobq_schedule_lag_seconds{queue=\"%s\"} %.3f\n", w->queues[i].s.queue,
                w->queues[i].sched_lag_ms / 1000.0);
    limits_text(o, w);
    histogram(o, w, "jobq_job_wait_seconds",
              "Time from enqueue (or due time) to the start of a run.", 0);
    histogram(o, w, "jobq_job_run_seconds", "Time from the start to the end of a run.", 1);
    family(o, "jobq_workers_live", "gauge",
           "Workers of every consumer with a live heartbeat (from Redis).");
    fprintf(o, "jobq_workers_live %zu\n", w->nworkers);
}

static const struct {
    const char *name, *type, *help;
    size_t off;
    double scale;
} worker_series[] = {
    {"jobq_worker_rss_bytes", "gauge", "Resident memory of the worker.",
     offsetof(jq_worker_watch_t, rss_bytes), 1},
    {"jobq_worker_cpu_seconds_total", "counter", "CPU time (user + system) of the worker.",
     offsetof(jq_worker_watch_t, cpu_ms), 1e-3},
    {"jobq_worker_busy_io", "gauge", "io jobs running on the worker's loop.",
     offsetof(jq_worker_watch_t, busy_io), 1},
    {"jobq_worker_busy_cpu", "gauge", "cpu threads of the worker running a job.",
     offsetof(jq_worker_watch_t, busy_cpu), 1},
    {"jobq_worker_threads", "gauge", "cpu threads of the worker.",
     offsetof(jq_worker_watch_t, threads), 1},
    {"jobq_worker_cpu_backlog", "gauge", "cpu jobs waiting for a thread of the worker.",
     offsetof(jq_worker_watch_t, cpu_backlog), 1},
    {"jobq_worker_loop_lag_seconds", "gauge",
     "Worst lateness of the worker's 100 ms loop tick between its last two heartbeats.",
     offsetof(jq_worker_watch_t, loop_lag_us), 1e-6},
    {"jobq_worker_open_fds", "gauge", "Open file descriptors of the worker.",
     offsetof(jq_worker_watch_t, open_fds), 1},
};

static int own_worker(const jq_metrics_t *m, const jq_worker_watch_t *w) {
    return w->master_pid == m->pid && strcmp(w->host, m->host) == 0;
}

static void workers_text(FILE *o, const jq_metrics_t *m, const jq_watch_t *w) {
    for (size_t k = 0; k < sizeof(worker_series) / sizeof(worker_series[0]); k++) {
        family(o, worker_series[k].name, worker_series[k].type, worker_series[k].help);
        for (size_t i = 0; i < w->nworkers; i++) {
            const jq_worker_watch_t *wk = &w->workers[i];
            if (!own_worker(m, wk)) continue;
            long long v = *(const long long *)((const char *)wk + worker_series[k].off);
            fprintf(o, "%s{worker=\"", worker_series[k].name);
            label(o, wk->id);
            if (worker_series[k].scale == 1)
                fprintf(o, "\"} %lld\n", v);
            else
                fprintf(o, "\"} %.6f\n", v * worker_series[k].scale);
        }
    }
}

static void local_text(FILE *o, const jq_metrics_t *m, int read_ok) {
    jq_metrics_local_t l;
    memset(&l, 0, sizeof(l));
    m->local(&l, m->local_data);
    const struct {
        const char *name, *type, *help;
        long long v;
    } s[] = {
        {"jobq_master_workers_configured", "gauge",
         "Worker processes this master runs (--workers).", l.workers_configured},
        {"jobq_master_workers_serving", "gauge",
         "Worker slots of this master with a ready, non-draining worker.", l.workers_serving},
        {"jobq_master_worker_starts_total", "counter", "Workers this master started.",
         l.worker_starts},
        {"jobq_master_worker_crashes_total", "counter",
         "Workers of this master that died by a signal or a non-zero status.", l.worker_crashes},
        {"jobq_master_worker_recycles_total", "counter",
         "Workers of this master recycled (max jobs, max RSS, a stuck cpu thread).",
         l.worker_recycles},
        {"jobq_master_redis_up", "gauge", "1 while the master's Redis connection is up.",
         l.redis_up},
        {"jobq_redis_read_ok", "gauge", "1 when this scrape could read the queues from Redis.",
         read_ok},
    };
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        family(o, s[i].name, s[i].type, s[i].help);
        fprintf(o, "%s %lld\n", s[i].name, s[i].v);
    }
}

/* ---- scrapes ---- */

static void free_metrics(jq_metrics_t *m) {
    jq_client_free(m->client);
    free(m);
}

static void on_read(uv_work_t *work) {
    jq_metrics_t *m = work->data;
    m->err[0] = '\0';
    if (!m->client) {
        m->client = jq_client_new_tls(m->opt->redis, m->opt->prefix, &m->opt->tls_client, m->err,
                                      sizeof(m->err));
        /* A hung Redis: give up well before the server's 10 s answer
         * timeout, so the scrape gets the master's own series, not a 504. */
        if (m->client) jq_client_set_timeout(m->client, READ_TIMEOUT_MS);
    }
    m->rc = m->client ? jq_watch_read(m->client, NULL, &m->snap, m->err, sizeof(m->err)) : -1;
}

static void answer_all(jq_metrics_t *m, int status, const char *body, size_t len) {
    for (int i = 0; i < m->nwaiting; i++)
        jq_httpd_respond(m->waiting[i], status, "text/plain; version=0.0.4; charset=utf-8", body,
                         len);
    m->nwaiting = 0;
}

static void on_read_done(uv_work_t *work, int status) {
    jq_metrics_t *m = work->data;
    m->busy = 0;
    static int warned;
    if (m->rc < 0 && !warned++) jq_warn("metrics: cannot read the queues from Redis: %s", m->err);
    if (m->rc == 0) warned = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&text, &len);
    if (o) {
        local_text(o, m, m->rc == 0);
        if (m->rc == 0) {
            queues_text(o, &m->snap);
            workers_text(o, m, &m->snap);
        }
    }
    if (o && fclose(o) == 0)
        answer_all(m, 200, text, len);
    else
        answer_all(m, 500, "out of memory\n", 14);
    free(text);
    jq_watch_destroy(&m->snap);
    if (m->closing) free_metrics(m);
}

static void on_metrics(jq_http_req_t *req, void *data) {
    jq_metrics_t *m = data;
    if (m->closing || m->nwaiting == JQ_HTTPD_MAX_CONNS) {
        jq_httpd_respond_text(req, 503, "shutting down\n");
        return;
    }
    m->waiting[m->nwaiting++] = req;
    if (m->busy) return; /* answered by the read in flight */
    m->busy = 1;
    m->work.data = m;
    if (uv_queue_work(m->loop, &m->work, on_read, on_read_done) != 0) {
        m->busy = 0;
        answer_all(m, 500, "cannot queue the read\n", 22);
    }
}

jq_metrics_t *jq_metrics_new(uv_loop_t *loop, jq_httpd_t *http, const jq_options_t *opt,
                             jq_metrics_local_fn local, void *data) {
    jq_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->loop = loop;
    m->opt = opt;
    m->local = local;
    m->local_data = data;
    m->pid = (long long)getpid();
    gethostname(m->host, sizeof(m->host) - 1);
    if (jq_httpd_route(http, "GET", "/metrics", on_metrics, m) < 0) {
        free(m);
        return NULL;
    }
    return m;
}

void jq_metrics_close(jq_metrics_t *m) {
    if (!m) return;
    m->closing = 1;
    if (!m->busy) free_metrics(m);
}
