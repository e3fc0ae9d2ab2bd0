#ifndef JQ_MASTER_INT_H
#define JQ_MASTER_INT_H

/* The master's own state, shared by master.c (start-up: the HTTP server,
 * Redis, signals, the end) and workers.c (the worker processes, their
 * control pipes, and supervise.c's decisions carried out on them). */

#include "dashsrv.h"
#include "handback.h"
#include "httpd.h"
#include "master.h"
#include "metrics.h"
#include "rcluster.h"
#include "rconn.h"
#include "supervise.h"
#include "switchsub.h"

typedef struct jq_master jq_master_t;

/* A worker process. */
typedef struct jq_child {
    jq_supervised_t sv; /* supervise.c's view; sv.data points here */
    uv_process_t proc;
    uv_pipe_t ctl; /* its fd 3 */
    jq_master_t *m;
    int closes; /* handles still to close before free */
    char line[256];
    size_t linelen;
} jq_child_t;

struct jq_master {
    uv_loop_t *loop;
    const jq_options_t *opt;
    int argc;
    char **argv;
    char exe[4096];
    jq_supervise_t sv;
    uv_timer_t *respawn; /* per slot */
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_t sigchld; /* started only as PID 1 (a container): orphans to reap */
    uv_timer_t kill_timer, janitor;
    int64_t last_pong_ms; /* Redis answered a PING (healthz) */
    jq_rconn_t redis;
    jq_rcluster_t *cluster;   /* redis+cluster://: routes redis's commands (rcluster.h) */
    jq_switchsub_t switchsub; /* redis+sentinel://: +switch-master */
    int has_switchsub;
    jq_handback_t handback;
    jq_httpd_t *http; /* --metrics-addr: /healthz, /metrics, dashboard */
    jq_metrics_t *metrics;
    jq_dashsrv_t *dash; /* the dashboard on http, unless --dashboard=0 */
    int exit_code;
    int signals;
};

#define CHILD(w) ((jq_child_t *)(w)->data)

/* supervise.c's callbacks, with data = the master (set at init). */
extern const jq_supervise_ops_t jq_master_ops;

/* Starts a worker in slot (supervise.h: ops.spawn). */
void jq_master_spawn(void *data, int slot);
/* Entries of a dead worker were handed back (handback.h: on_handed). */
void jq_master_tell_reclaim(void *data);
/* The sentinels switched the master (switchsub.h): tells every worker,
 * "switch-master SENTINEL_HOST PORT OLD_HOST PORT NEW_HOST PORT". */
void jq_master_tell_switch(jq_master_t *m, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                           const jq_url_addr_t *now);
/* Once shutting down and every worker exited: closes every handle. */
void jq_master_finish(jq_master_t *m);

#endif
