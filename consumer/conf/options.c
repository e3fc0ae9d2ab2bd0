/* The consumer's option table. Adding a setting is one row here and one
 * field in jq_options_t; flags, environment and help all follow. */

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "options.h"

#define O(f) offsetof(jq_options_t, f)
#define S(f) sizeof(((jq_options_t *)0)->f)
#define GIB (1024LL * 1024 * 1024)

const jq_opt_t jq_options_table[] = {
    {"redis", "JOBQ_REDIS_URL", JQ_OPT_STR, JQ_URL_DEFAULT, 0, 0, O(redis), S(redis),
     "Redis URL: redis://[user:password@]host:port[/db], rediss://... (TLS), "
     "redis+sentinel://host:port[,host:port...]/MASTER[/db], "
     "redis+cluster://host:port[,host:port...] (Redis Cluster: seed nodes) or unix:///path"},
    JQ_TLS_OPT_ROWS(jq_options_t, tls_opts),
    {"queues", "JOBQ_QUEUES", JQ_OPT_STR, "default", 0, 0, O(queues_csv), S(queues_csv),
     "comma-separated queues to serve; name=N holds at most N jobs of that queue at once per "
     "worker; name/W gives it W shares of each read's free slots (default 1; name=N/W both)"},
    {"queue-order", "JOBQ_QUEUE_ORDER", JQ_OPT_STR, "weighted", 0, 0, O(queue_order),
     S(queue_order),
     "weighted (each read splits the free slots by weight) or strict (a queue is read only "
     "while those before it in --queues have nothing ready; no weights)"},
    {"prefix", "JOBQ_PREFIX", JQ_OPT_STR, JQ_PREFIX_DEFAULT, 0, 0, O(prefix), S(prefix),
     "key prefix"},
    {"workers", "JOBQ_WORKERS", JQ_OPT_AUTO, "auto", 0, 256, O(workers), 0,
     "worker processes, or auto (= usable CPUs)"},
    {"threads", "JOBQ_THREADS", JQ_OPT_AUTO, "auto", 0, 256, O(threads), 0,
     "CPU threads per worker, or auto (= usable CPUs / workers, at least 1)"},
    {"io-concurrency", "JOBQ_IO_CONCURRENCY", JQ_OPT_INT, "64", 1, 100000, O(io_concurrency), 0,
     "io jobs one worker runs at once"},
    {"read-ahead", "JOBQ_READ_AHEAD", JQ_OPT_INT, "0", 0, 1000000, O(read_ahead), 0,
     "finished jobs whose ack is on its way that a read may count as free slots (0: strict)"},
    {"max-payload", "JOBQ_MAX_PAYLOAD", JQ_OPT_BYTES, "64M", 1, 4 * GIB, O(max_payload), 0,
     "largest payload accepted, bytes (k, m, g suffixes)"},
    {"timeout-ms", "JOBQ_TIMEOUT_MS", JQ_OPT_INT, "1800000", 1, 1LL << 40, O(timeout_ms), 0,
     "time limit of one attempt, unless the job sets timeout_ms"},
    {"visibility-ms", "JOBQ_VISIBILITY_MS", JQ_OPT_INT, "30000", 100, 1LL << 40, O(visibility_ms),
     0, "a pending entry idle this long is claimed by another consumer"},
    {"shutdown-timeout-ms", "JOBQ_SHUTDOWN_TIMEOUT_MS", JQ_OPT_INT, "30000", 0, 1LL << 40,
     O(shutdown_timeout_ms), 0, "time running jobs get to finish on SIGTERM"},
    {"max-jobs", "JOBQ_MAX_JOBS", JQ_OPT_INT, "0", 0, 1LL << 50, O(max_jobs), 0,
     "recycle a worker after this many jobs (0: never)"},
    {"max-rss-mb", "JOBQ_MAX_RSS_MB", JQ_OPT_INT, "0", 0, 1LL << 30, O(max_rss_mb), 0,
     "recycle a worker whose RSS passes this (0: never)"},
    {"backoff-ms", "JOBQ_BACKOFF_MS", JQ_OPT_INT, "1000", 1, 1LL << 40, O(backoff_ms), 0,
     "first retry delay; the n-th waits backoff * 2^(n-1), +-20%"},
    {"backoff-max-ms", "JOBQ_BACKOFF_MAX_MS", JQ_OPT_INT, "3600000", 1, 1LL << 40,
     O(backoff_max_ms), 0, "cap of the retry delay"},
    {"dead-max", "JOBQ_DEAD_MAX", JQ_OPT_INT, "10000", 1, 1LL << 40, O(dead_max), 0,
     "dead jobs kept per queue (oldest go first)"},
    {"dead-ttl", "JOBQ_DEAD_TTL", JQ_OPT_INT, "604800", 1, 1LL << 40, O(dead_ttl), 0,
     "seconds a dead job is kept"},
    {"chunk-size", "JOBQ_CHUNK_SIZE", JQ_OPT_BYTES, "256k", 1024, GIB, O(chunk_size), 0,
     "results larger than this are written as a chunk list"},
    {"heartbeat-ms", "JOBQ_HEARTBEAT_MS", JQ_OPT_INT, "1000", 50, 600000, O(heartbeat_ms), 0,
     "worker heartbeat period"},
    {"cpu-grace-ms", "JOBQ_CPU_GRACE_MS", JQ_OPT_INT, "10000", 0, 1LL << 40, O(cpu_grace_ms), 0,
     "a cpu job this long past its timeout gets its worker recycled"},
    {"metrics-addr", "JOBQ_METRICS_ADDR", JQ_OPT_STR, "", 0, 0, O(metrics_addr), S(metrics_addr),
     "serve /metrics and /healthz over HTTP on HOST:PORT (numeric host; empty: off)"},
    {"dashboard", "JOBQ_DASHBOARD", JQ_OPT_BOOL, "1", 0, 1, O(dashboard), 0,
     "serve the web dashboard at / on --metrics-addr (--dashboard=0: off)"},
    {"admin-token", "JOBQ_ADMIN_TOKEN", JQ_OPT_STR, "", 0, 0, O(admin_token), S(admin_token),
     "token the dashboard's actions need (at least 16 characters; empty: read-only); "
     "prefer the environment variable, argv is visible to ps"},
    {"log-level", "JOBQ_LOG_LEVEL", JQ_OPT_STR, "info", 0, 0, O(log_level), S(log_level),
     "debug, info, warn or error"},
    {"plugin", "JOBQ_PLUGINS", JQ_OPT_LIST, "", 0, 0, O(plugins), S(plugins),
     "load job handlers from a shared object (repeatable; env: one path a line)"},
    {"exec", "JOBQ_EXEC", JQ_OPT_LIST, "", 0, 0, O(exec), S(exec),
     "NAME=COMMAND: job type NAME runs COMMAND, split into words here, no shell (repeatable)"},
    {"exec-env", "JOBQ_EXEC_ENV", JQ_OPT_LIST, "", 0, 0, O(exec_env), S(exec_env),
     "pass this variable of ours on to --exec commands (repeatable)"},
    {"exec-stdin", "JOBQ_EXEC_STDIN", JQ_OPT_STR, "auto", 0, 0, O(exec_stdin), S(exec_stdin),
     "payload on a command's stdin: auto (str/bin raw, else msgpack), msgpack or json"},
    {"exec-max-output", "JOBQ_EXEC_MAX_OUTPUT", JQ_OPT_BYTES, "1M", 1, GIB, O(exec_max_output), 0,
     "a command writing more to stdout fails its attempt"},
    {"proc", "JOBQ_PROCS", JQ_OPT_LIST, "", 0, 0, O(procs), S(procs),
     "TYPES=COMMAND: each worker keeps COMMAND running and streams it the jobs of TYPES (a or "
     "a+b), docs/HANDLERS.md's frame protocol on its stdin and stdout (repeatable)"},
    {"proc-count", "JOBQ_PROC_COUNT", JQ_OPT_INT, "1", 1, 64, O(proc_count), 0,
     "processes of each --proc command per worker"},
    {"proc-max-jobs", "JOBQ_PROC_MAX_JOBS", JQ_OPT_INT, "0", 0, 1LL << 50, O(proc_max_jobs), 0,
     "recycle a --proc process after this many jobs (0: never)"},
    {"proc-max-rss-mb", "JOBQ_PROC_MAX_RSS_MB", JQ_OPT_INT, "0", 0, 1LL << 30, O(proc_max_rss_mb),
     0, "recycle a --proc process whose RSS passes this (0: never)"},
    {"http-allow", "JOBQ_HTTP_ALLOW", JQ_OPT_LIST, "", 0, 0, O(http_allow), S(http_allow),
     "turn on the http job type for URLs under this prefix, e.g. https://api.example.com/v1/ "
     "(repeatable)"},
    {"http-max-response", "JOBQ_HTTP_MAX_RESPONSE", JQ_OPT_BYTES, "8M", 1, GIB,
     O(http_max_response), 0, "an http job whose response body is larger fails"},
    {"cpu-mode", "JOBQ_CPU_MODE", JQ_OPT_STR, "pool", 0, 0, O(cpu_mode), S(cpu_mode),
     "where cpu jobs run: pool (the worker's threads); inline (on the loop) and uv "
     "(libuv's threadpool) exist only for benchmarks"},
    {"cpu-sched", "JOBQ_CPU_SCHED", JQ_OPT_STR, "nice", 0, 0, O(cpu_sched), S(cpu_sched),
     "how cpu threads yield to io work: idle (SCHED_IDLE), slice (nice 5, 0.1 ms slices), "
     "nice (nice 5), normal"},
    {"cpu-yield-us", "JOBQ_CPU_YIELD_US", JQ_OPT_INT, "250", 0, 100000, O(cpu_yield_us), 0,
     "a cpu thread running a long job lets a waiting thread (the loop, Redis, a client) "
     "have its core after at most this many microseconds (0: never)"},
    {"test-handlers", "JOBQ_TEST_HANDLERS", JQ_OPT_BOOL, "0", 0, 1, O(test_handlers), 0,
     "register the crash handler (tests only)"},
    {"worker-role", NULL, JQ_OPT_STR, "", 0, 0, O(worker_role), S(worker_role),
     "internal: run as a worker of a master"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL},
};

/* One number of --queues, s[0..len), from 1 to max: 0, or -1 with err
 * naming what (a limit, "name=N"; a weight, "name/W"). */
static int parse_count(const char *s, size_t len, long long max, const char *what, const char *form,
                       long long *out, char *err, size_t errlen) {
    char buf[24];
    if (len == 0 || len >= sizeof(buf)) goto bad;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end || buf[0] == '-' || buf[0] == '+' || v < 1 || v > max) goto bad;
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "--queues: bad %s '%.*s' (want %s, N from 1 to %lld)", what,
             (int)(len > 30 ? 30 : len), s, form, max);
    return -1;
}

/* "name=N": '=' because ':' is allowed in queue names ("mail:eu"). */
static int parse_limit(const char *s, size_t len, long long *limit, char *err, size_t errlen) {
    return parse_count(s, len, 1000000, "limit", "name=N", limit, err, errlen);
}

/* "name/W": the queue's weight (admit.h); '/' is not allowed in names. */
static int parse_weight(const char *s, size_t len, long long *w, char *err, size_t errlen) {
    return parse_count(s, len, 1000, "weight", "name/N", w, err, errlen);
}

/* "mail:4" is a valid queue name, but most likely meant the limit
 * "mail=4": say so once, and serve the name as given. */
static void warn_colon_limit(const char *s, size_t n) {
    size_t d = n;
    while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9') d--;
    if (d == n || d < 2 || s[d - 1] != ':') return;
    jq_warn("--queues: serving a queue named '%.*s'; for at most %.*s jobs of queue '%.*s' "
            "at once, write %.*s=%.*s",
            (int)n, s, (int)(n - d), s + d, (int)(d - 1), s, (int)(d - 1), s, (int)(n - d), s + d);
}

/* Splits --queues into names and limits, and leaves queues_csv as the
 * bare names (what the heartbeat shows). */
static int split_queues(jq_options_t *o, char *err, size_t errlen) {
    o->nqueues = 0;
    const char *s = o->queues_csv;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        const char *sl0 = memchr(s, '/', len);
        size_t nlen = eq ? (size_t)(eq - s) : sl0 ? (size_t)(sl0 - s) : len;
        if (!jq_name_valid(s, nlen)) {
            snprintf(err, errlen,
                     "--queues: bad queue name '%.*s' (want 1 to 128 bytes of [A-Za-z0-9_.:-])",
                     (int)(nlen > 140 ? 140 : nlen), s);
            return -1;
        }
        for (int i = 0; i < o->nqueues; i++)
            if (strlen(o->queues[i]) == nlen && memcmp(o->queues[i], s, nlen) == 0) {
                snprintf(err, errlen, "--queues: queue '%.*s' named twice", (int)nlen, s);
                return -1;
            }
        if (o->nqueues == JQ_QUEUES_MAX) {
            snprintf(err, errlen, "--queues: at most %d queues", JQ_QUEUES_MAX);
            return -1;
        }
        o->queue_limit[o->nqueues] = 0;
        o->queue_weight[o->nqueues] = 1;
        /* "/W" last: '/' is not allowed in queue names. */
        const char *sl = memchr(s, '/', len);
        size_t lend = sl ? (size_t)(sl - s) : len; /* the end of name[=N] */
        if (sl &&
            parse_weight(sl + 1, len - lend - 1, &o->queue_weight[o->nqueues], err, errlen) != 0)
            return -1;
        if (eq &&
            parse_limit(eq + 1, lend - nlen - 1, &o->queue_limit[o->nqueues], err, errlen) != 0)
            return -1;
        if (!o->worker_role[0]) warn_colon_limit(s, nlen); /* the master's, once */
        memcpy(o->queues[o->nqueues], s, nlen);
        o->queues[o->nqueues][nlen] = '\0';
        o->nqueues++;
        s += len;
        if (*s == ',') s++;
    }
    if (o->nqueues == 0) {
        snprintf(err, errlen, "--queues: no queue named");
        return -1;
    }
    size_t off = 0;
    for (int i = 0; i < o->nqueues; i++)
        off += (size_t)snprintf(o->queues_csv + off, sizeof(o->queues_csv) - off, "%s%s",
                                i ? "," : "", o->queues[i]);
    return 0;
}

int jq_options_parse(jq_options_t *o, int argc, char **argv, char *err, size_t errlen) {
    memset(o, 0, sizeof(*o));
    int argi = 1;
    int rc = jq_opts_parse(jq_options_table, o, argc, argv, &argi, err, errlen);
    if (rc != 0) return rc;
    if (argi < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[argi]);
        return -1;
    }
    jq_log_level_t lvl;
    if (jq_log_parse_level(o->log_level, &lvl) != 0) {
        snprintf(err, errlen, "--log-level: '%s' is not one of debug, info, warn, error",
                 o->log_level);
        return -1;
    }
    jq_log_set_level(lvl);
    if (jq_url_parse(o->redis, &o->url, err, errlen) != 0) return -1;
    if (jq_tls_opts_settings(&o->tls_opts, &o->url, &o->tls_client, err, errlen) != 0) return -1;
    /* A file missing or unreadable, or a key not of its certificate, stops
     * us here, before any worker starts (exit 2). */
    if (o->url.tls && !(o->tls = jq_tls_new(&o->tls_client, err, errlen))) return -1;
    if (!jq_name_valid(o->prefix, strlen(o->prefix))) {
        snprintf(err, errlen, "--prefix: bad prefix '%s'", o->prefix);
        return -1;
    }
    if (split_queues(o, err, errlen) != 0) return -1;
    if (strcmp(o->queue_order, "strict") && strcmp(o->queue_order, "weighted")) {
        snprintf(err, errlen, "--queue-order: '%s' is not strict or weighted", o->queue_order);
        return -1;
    }
    o->strict = !strcmp(o->queue_order, "strict");
    /* Under strict the order is --queues' and a weight would mean nothing:
     * refused rather than silently ignored. */
    for (int i = 0; o->strict && i < o->nqueues; i++)
        if (o->queue_weight[i] != 1) {
            snprintf(err, errlen,
                     "--queue-order strict: queue '%s' has a weight (/%lld); strict orders by "
                     "--queues, weights are for --queue-order weighted",
                     o->queues[i], o->queue_weight[i]);
            return -1;
        }
    if (o->admin_token[0] && strlen(o->admin_token) < JQ_ADMIN_TOKEN_MIN) {
        snprintf(err, errlen, "--admin-token: at least %d characters", JQ_ADMIN_TOKEN_MIN);
        return -1;
    }
    if (o->backoff_max_ms < o->backoff_ms) o->backoff_max_ms = o->backoff_ms;
    /* Sizing follows the CPUs this process may really use, never the
     * host's count: in a container with a 2-CPU quota on a 64-core host, 64
     * workers would only fight over 2 CPUs. */
    o->cpus = jq_cpu_count("/sys/fs/cgroup", -1);
    if (o->workers == 0) o->workers = o->cpus;
    if (o->threads == 0) {
        o->threads = o->cpus / o->workers;
        if (o->threads < 1) o->threads = 1;
    }
    return 0;
}

void jq_options_usage(FILE *out) {
    fprintf(out, "usage: jobq-consumer [options]\n\n"
                 "Runs a master process that supervises N worker processes; each worker\n"
                 "runs io jobs on its event loop and cpu jobs on its own thread pool.\n\n"
                 "options (each also read from the environment variable shown):\n");
    jq_opts_usage(jq_options_table, out);
}
