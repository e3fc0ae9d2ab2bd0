/* The counters of a finish batch (PROTOCOL §7), summed over its outcomes
 * and written as a few HINCRBYs into its MULTI. See counts.h. */

#include <stdio.h>
#include <string.h>

#include "counts.h"
#include "finish.h"

static const long long bucket_ms[JQ_COUNTS_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

static int bucket_of(long long ms) {
    for (int i = 0; i < JQ_COUNTS_BUCKETS - 1; i++)
        if (ms <= bucket_ms[i]) return i;
    return JQ_COUNTS_BUCKETS - 1;
}

/* The counters (§7): a failed attempt counts as failed, and as retried or
 * dead; a job dead on arrival only as dead. */
static void count(jq_counts_t *sum, const jq_run_t *r, jq_job_state_t st) {
    if (r->outcome == JQ_OUT_FAILED) sum->failed++;
    if (st == JQ_STATE_DONE)
        sum->processed++;
    else if (st == JQ_STATE_CANCELLED)
        sum->cancelled++;
    else if (st == JQ_STATE_RETRYING)
        sum->retried++;
    else
        sum->dead++;
}

static void add_latency(const jq_run_t *r, jq_counts_t *sum) {
    if (!r->started_ms) return;
    if (r->job.enqueued_ms) {
        long long wait_ms = r->started_ms - r->job.enqueued_ms;
        if (wait_ms < 0) wait_ms = 0;
        sum->wait[bucket_of(wait_ms)]++;
        sum->wait_n++;
        sum->wait_us += wait_ms * 1000;
    }
    sum->run[bucket_of(r->run_us / 1000)]++;
    sum->run_n++;
    sum->run_us += r->run_us;
}

void jq_counts_add(jq_counts_t *sum, const jq_run_t *r, jq_job_state_t st) {
    count(sum, r, st);
    add_latency(r, sum);
}

static void hincrby(jq_finish_t *fin, const char *key, const char *field, long long by) {
    char v[24];
    jq_ll2str(v, by);
    jq_args_t *a = jq_finish_cmd(fin, "HINCRBY");
    jq_args_str(a, key);
    jq_args_str(a, field);
    jq_args_str(a, v);
    jq_finish_send(fin, NULL, NULL);
}

/* The batch's counts (§7), summed: in the queue's stats hash and in its
 * per-minute one, kept a day. */
static void write_counts(jq_finish_t *fin, const char *qn, const jq_counts_t *s) {
    char key[JQ_KEY_MAX], mkey[JQ_KEY_MAX], suffix[48];
    jq_key(key, sizeof(key), fin->env.opt->prefix, qn, "stats");
    snprintf(suffix, sizeof(suffix), "stats:%lld", (long long)(jq_now_ms() / 60000));
    jq_key(mkey, sizeof(mkey), fin->env.opt->prefix, qn, suffix);
    const char *names[] = {"processed", "failed", "retried", "dead", "cancelled"};
    const long long vals[] = {s->processed, s->failed, s->retried, s->dead, s->cancelled};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!vals[i]) continue;
        hincrby(fin, key, names[i], vals[i]);
        hincrby(fin, mkey, names[i], vals[i]);
    }
    jq_finish_expire(fin, mkey, "86400");
}

/* One latency histogram (wait or run) of the batch into the queue's
 * latency hash: its non-empty buckets, count and sum. */
static void write_latency(jq_finish_t *fin, const char *lkey, const char *kind,
                          const long long *buckets, long long n, long long sum_us) {
    char f[32];
    if (!n) return;
    for (int i = 0; i < JQ_COUNTS_BUCKETS; i++) {
        if (!buckets[i]) continue;
        if (i < JQ_COUNTS_BUCKETS - 1)
            snprintf(f, sizeof(f), "%s:le:%lld", kind, bucket_ms[i]);
        else
            snprintf(f, sizeof(f), "%s:le:inf", kind);
        hincrby(fin, lkey, f, buckets[i]);
    }
    snprintf(f, sizeof(f), "%s:count", kind);
    hincrby(fin, lkey, f, n);
    snprintf(f, sizeof(f), "%s:sum_us", kind);
    hincrby(fin, lkey, f, sum_us);
}

void jq_counts_write(jq_finish_t *fin, const char *qn, const jq_counts_t *s) {
    char lkey[JQ_KEY_MAX];
    write_counts(fin, qn, s);
    jq_key(lkey, sizeof(lkey), fin->env.opt->prefix, qn, "latency");
    write_latency(fin, lkey, "wait", s->wait, s->wait_n, s->wait_us);
    write_latency(fin, lkey, "run", s->run, s->run_n, s->run_us);
}
