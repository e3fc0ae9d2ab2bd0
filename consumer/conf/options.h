#ifndef JQ_OPTIONS_H
#define JQ_OPTIONS_H

/* The consumer's settings: one table (options.c) feeds flags, environment
 * variables and compose files alike. Master and workers parse the same argv,
 * so a worker always runs with exactly its master's settings. */

#include <stdio.h>

#include "config.h"
#include "keys.h"
#include "tls.h"
#include "url.h"

#define JQ_QUEUES_MAX 32
#define JQ_ADMIN_TOKEN_MIN 16 /* bytes; shorter tokens are refused at start */

typedef struct jq_options {
    char redis[512];
    jq_tls_opts_t tls_opts; /* --redis-tls-* */
    char queues_csv[1024];
    char queue_order[16]; /* weighted or strict (admit.h, fetch.h) */
    char prefix[64];
    char log_level[16];
    char metrics_addr[64]; /* HOST:PORT of the HTTP server, "" = off */
    int dashboard;         /* serve the dashboard on that server */
    char admin_token[256]; /* allows the dashboard's actions; "" = none */
    long long workers;     /* 0 = auto */
    long long threads;     /* 0 = auto */
    long long io_concurrency;
    long long read_ahead; /* finished, unacked jobs a read may count as free */
    long long max_payload;
    long long timeout_ms;
    long long visibility_ms;
    long long shutdown_timeout_ms;
    long long max_jobs;   /* 0 = never recycle for jobs */
    long long max_rss_mb; /* 0 = never recycle for memory */
    long long backoff_ms;
    long long backoff_max_ms;
    long long dead_max;
    long long dead_ttl; /* seconds */
    long long chunk_size;
    long long heartbeat_ms;
    long long cpu_grace_ms;
    int test_handlers;
    char plugins[4096];  /* list: --plugin PATH.so */
    char exec[8192];     /* list: --exec NAME=COMMAND */
    char exec_env[2048]; /* list: --exec-env VAR */
    char exec_stdin[16]; /* auto, msgpack or json */
    long long exec_max_output;
    char procs[8192]; /* list: --proc TYPES=COMMAND */
    long long proc_count;
    long long proc_max_jobs;   /* 0 = never recycle for jobs */
    long long proc_max_rss_mb; /* 0 = never recycle for memory */
    char http_allow[4096];     /* list: --http-allow PREFIX */
    long long http_max_response;
    char cpu_mode[16];      /* pool, or inline / uv for benchmarks */
    char cpu_sched[16];     /* idle, slice, nice, normal (pool.h) */
    long long cpu_yield_us; /* jq_pool_yield_point()'s period; 0: never */
    char worker_role[16];   /* internal: set by the master for workers */

    /* Derived by jq_options_finish. */
    jq_url_t url;
    jq_client_tls_t tls_client; /* tls_opts as libjobq takes them (the dashboard's reads) */
    jq_tls_t *tls;              /* rediss://: the TLS context, made at parse (each process
                                   its own; never freed); NULL for other URLs */
    int nqueues;
    char queues[JQ_QUEUES_MAX][JQ_NAME_MAX + 1];
    long long queue_limit[JQ_QUEUES_MAX];  /* name=N in --queues; 0: none */
    long long queue_weight[JQ_QUEUES_MAX]; /* name/W in --queues; 1 by default */
    int strict;                            /* --queue-order strict */
    int cpus;                              /* usable CPUs (affinity, cgroup quota) */
} jq_options_t;

extern const jq_opt_t jq_options_table[];

/* Parses argv (after argv[0]) into o and derives the rest. Returns 0,
 * JQ_OPTS_HELP, or -1 with err. Positional arguments are refused. The
 * names of the CPU pool's mode and policy are checked by the pool itself
 * (jq_pool_set_mode, jq_pool_set_sched): main applies them. */
int jq_options_parse(jq_options_t *o, int argc, char **argv, char *err, size_t errlen);

void jq_options_usage(FILE *out);

#endif
