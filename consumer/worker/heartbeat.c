/* The worker's heartbeat. See heartbeat.h. */

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "args.h"
#include "heartbeat.h"
#include "log.h"

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

void jq_heartbeat_init(jq_heartbeat_t *hb, const jq_stage_env_t *env,
                       const jq_heartbeat_borrow_t *b) {
    memset(hb, 0, sizeof(*hb));
    hb->env = *env;
    hb->b = *b;
}

/* HSET of the worker's hash <p>:worker:<id> (key), with its PEXPIRE of
 * three heartbeats. */
static void send_hash(jq_heartbeat_t *hb, const char *key, long long rss,
                      const jq_heartbeat_stats_t *st, jq_args_t *a) {
    const jq_options_t *o = hb->env.opt;
    char v[14][32];
    snprintf(v[0], 32, "%d", (int)getpid());
    snprintf(v[1], 32, "%lld", (long long)*hb->b.started_ms);
    snprintf(v[2], 32, "%lld", st->processed);
    snprintf(v[3], 32, "%lld", st->failed);
    snprintf(v[4], 32, "%d", st->busy_io);
    snprintf(v[5], 32, "%d", st->busy_cpu);
    snprintf(v[6], 32, "%lld", o->threads);
    snprintf(v[7], 32, "%zu", st->cpu_backlog);
    snprintf(v[8], 32, "%lld", rss);
    snprintf(v[9], 32, "%lld", cpu_ms());
    snprintf(v[10], 32, "%d", open_fds());
    /* The worst lag since the previous heartbeat: one late tick between two
     * heartbeats is what an alert on loop lag must see. */
    snprintf(v[11], 32, "%lld", (long long)st->loop_lag_us);
    snprintf(v[12], 32, "%d", (int)getppid());
    snprintf(v[13], 32, "%d", *hb->b.draining);
    const char *fields[][2] = {{"host", hb->b.host},
                               {"pid", v[0]},
                               {"queues", o->queues_csv},
                               {"started_at", v[1]},
                               {"processed", v[2]},
                               {"failed", v[3]},
                               {"busy_io", v[4]},
                               {"busy_cpu", v[5]},
                               {"threads", v[6]},
                               {"cpu_backlog", v[7]},
                               {"rss_bytes", v[8]},
                               {"cpu_ms", v[9]},
                               {"open_fds", v[10]},
                               {"loop_lag_us", v[11]},
                               {"master_pid", v[12]},
                               {"draining", v[13]},
                               {"types", jq_types_csv(hb->b.types)}};
    jq_args_reset(a);
    jq_args_str(a, "HSET");
    jq_args_str(a, key);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        jq_args_str(a, fields[i][0]);
        jq_args_str(a, fields[i][1]);
    }
    jq_rconn_args(hb->env.conn, a, NULL, NULL);
    jq_args_reset(a);
    jq_args_str(a, "PEXPIRE");
    jq_args_str(a, key);
    jq_args_ll(a, 3 * o->heartbeat_ms);
    jq_rconn_args(hb->env.conn, a, NULL, NULL);
}

/* The worker's score in <p>:workers, the workers whose heartbeat stopped
 * out of it (whoever notices), and its queues in <p>:queues. */
static void send_presence(jq_heartbeat_t *hb, int64_t now, jq_args_t *a) {
    const jq_options_t *o = hb->env.opt;
    char key[JQ_KEY_MAX], qkey[JQ_KEY_MAX];
    jq_key_global(key, sizeof(key), o->prefix, "workers");
    jq_key_global(qkey, sizeof(qkey), o->prefix, "queues");
    jq_args_reset(a);
    jq_args_str(a, "ZADD");
    jq_args_str(a, key);
    jq_args_ll(a, (long long)now);
    jq_args_str(a, hb->env.worker_id);
    jq_rconn_args(hb->env.conn, a, NULL, NULL);
    jq_args_reset(a);
    jq_args_str(a, "ZREMRANGEBYSCORE");
    jq_args_str(a, key);
    jq_args_str(a, "-inf");
    jq_args_ll(a, (long long)(now - 3 * o->heartbeat_ms));
    jq_rconn_args(hb->env.conn, a, NULL, NULL);
    for (int i = 0; i < *hb->env.nqueues; i++) {
        if (hb->env.queues[i].is_level) continue; /* its queue's name is there */
        jq_args_reset(a);
        jq_args_str(a, "SADD");
        jq_args_str(a, qkey);
        jq_args_str(a, hb->env.queues[i].name);
        jq_rconn_args(hb->env.conn, a, NULL, NULL);
    }
}

/* Over --max-rss-mb: recycled, unless it is so before any job ran (then
 * the limit is below a fresh worker's size, and recycling would only fork
 * replacements in a loop). */
static void check_rss(jq_heartbeat_t *hb, long long rss, long long jobs_done) {
    long long max_mb = hb->env.opt->max_rss_mb;
    if (!max_mb || rss <= max_mb * 1024 * 1024 || *hb->b.draining) return;
    if (jobs_done > 0)
        hb->b.recycle(hb->env.worker, "recycle max-rss", "RSS over --max-rss-mb");
    else if (!hb->rss_warned++)
        jq_warn(
            "RSS %lld MB is over --max-rss-mb %lld before any job: not recycling an idle worker",
            rss / (1024 * 1024), max_mb);
}

void jq_heartbeat_send(jq_heartbeat_t *hb) {
    if (!hb->env.conn->up || *hb->env.stopping) return;
    char wkey[JQ_KEY_MAX];
    snprintf(wkey, sizeof(wkey), "%s:worker:%s", hb->env.opt->prefix, hb->env.worker_id);
    long long rss = rss_bytes();
    jq_heartbeat_stats_t st;
    hb->b.stats(hb->env.worker, &st);
    jq_args_t a;
    jq_args_init(&a);
    send_hash(hb, wkey, rss, &st, &a);
    int64_t now = jq_now_ms();
    send_presence(hb, now, &a);
    jq_args_destroy(&a);
    jq_types_publish(hb->b.types, now);
    check_rss(hb, rss, st.jobs_done);
}
