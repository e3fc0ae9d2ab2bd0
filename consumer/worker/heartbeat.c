/* The worker's heartbeat (PROTOCOL §7): a hash of what the worker is doing
 * and costs, and its score in <p>:workers, refreshed every heartbeat and
 * left to expire after three missed ones, so that a dead worker drops out of
 * every dashboard on its own. */

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

static long long rss_bytes(void) {
    long long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static long long cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the DIR's own fd */
}

void jq_heartbeat_send(jq_worker_t *w) {
    if (!w->rwrite.up || w->stopping) return;
    const jq_options_t *o = w->opt;
    char key[JQ_KEY_MAX], wkey[JQ_KEY_MAX], qkey[JQ_KEY_MAX];
    char v[14][32];
    long long rss = rss_bytes();
    jq_key_global(key, sizeof(key), o->prefix, "workers");
    jq_key_global(qkey, sizeof(qkey), o->prefix, "queues");
    snprintf(wkey, sizeof(wkey), "%s:worker:%s", o->prefix, w->id);
    snprintf(v[0], 32, "%d", (int)getpid());
    snprintf(v[1], 32, "%lld", (long long)w->started_ms);
    snprintf(v[2], 32, "%lld", w->processed);
    snprintf(v[3], 32, "%lld", w->failed);
    snprintf(v[4], 32, "%d", w->busy_io);
    snprintf(v[5], 32, "%d", jq_pool_busy(&w->pool));
    snprintf(v[6], 32, "%lld", o->threads);
    snprintf(v[7], 32, "%zu", jq_pool_backlog(&w->pool));
    snprintf(v[8], 32, "%lld", rss);
    snprintf(v[9], 32, "%lld", cpu_ms());
    snprintf(v[10], 32, "%d", open_fds());
    /* The worst lag since the previous heartbeat: one late tick between two
     * heartbeats is what an alert on loop lag must see. */
    snprintf(v[11], 32, "%lld", (long long)w->loop_lag_us);
    w->loop_lag_us = 0;
    snprintf(v[12], 32, "%d", (int)getppid());
    snprintf(v[13], 32, "%d", w->draining);
    const char *fields[][2] = {
        {"host", w->host},      {"pid", v[0]},          {"queues", o->queues_csv},
        {"started_at", v[1]},   {"processed", v[2]},    {"failed", v[3]},
        {"busy_io", v[4]},      {"busy_cpu", v[5]},     {"threads", v[6]},
        {"cpu_backlog", v[7]},  {"rss_bytes", v[8]},    {"cpu_ms", v[9]},
        {"open_fds", v[10]},    {"loop_lag_us", v[11]}, {"master_pid", v[12]},
        {"draining", v[13]},    {"types", jq_types_csv(&w->types)}};
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HSET");
    jq_args_str(&a, wkey);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        jq_args_str(&a, fields[i][0]);
        jq_args_str(&a, fields[i][1]);
    }
    jq_rconn_args(&w->rwrite, &a, NULL, NULL);
    int64_t now = jq_now_ms();
    jq_args_reset(&a);
    jq_args_str(&a, "PEXPIRE");
    jq_args_str(&a, wkey);
    jq_args_ll(&a, 3 * o->heartbeat_ms);
    jq_rconn_args(&w->rwrite, &a, NULL, NULL);
    jq_args_reset(&a);
    jq_args_str(&a, "ZADD");
    jq_args_str(&a, key);
    jq_args_ll(&a, (long long)now);
    jq_args_str(&a, w->id);
    jq_rconn_args(&w->rwrite, &a, NULL, NULL);
    /* Workers whose heartbeat stopped leave the set too, whoever notices. */
    jq_args_reset(&a);
    jq_args_str(&a, "ZREMRANGEBYSCORE");
    jq_args_str(&a, key);
    jq_args_str(&a, "-inf");
    jq_args_ll(&a, (long long)(now - 3 * o->heartbeat_ms));
    jq_rconn_args(&w->rwrite, &a, NULL, NULL);
    for (int i = 0; i < w->nqueues; i++) {
        jq_args_reset(&a);
        jq_args_str(&a, "SADD");
        jq_args_str(&a, qkey);
        jq_args_str(&a, w->queues[i].name);
        jq_rconn_args(&w->rwrite, &a, NULL, NULL);
    }
    jq_args_destroy(&a);
    jq_types_publish(&w->types, now);

    if (o->max_rss_mb && rss > o->max_rss_mb * 1024 * 1024 && !w->draining) {
        /* Over it before any job ran: the limit is below a fresh worker's
         * size, and recycling would only fork replacements in a loop. */
        static int warned;
        if (w->jobs_done > 0) {
            jq_worker_tell(w, "recycle max-rss");
            jq_worker_drain(w, "RSS over --max-rss-mb");
        } else if (!warned++) {
            jq_warn("RSS %lld MB is over --max-rss-mb %lld before any job: not recycling an idle worker",
                    rss / (1024 * 1024), o->max_rss_mb);
        }
    }
}
