/* The supervising master's start-up and end: the HTTP server, the Redis
 * connection, signals, the janitor, and the order in which everything
 * closes. The worker processes are workers.c's; what to do with them,
 * supervise.c's; what dead workers held, handback.c's. See master.h for
 * what the master guarantees. */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "log.h"
#include "master_int.h"
#include "notify.h"
#include "reap.h"

#define KILL_MARGIN_MS 5000
#define JANITOR_MS 1000
#define PONG_STALE_MS (3 * JANITOR_MS + 500) /* Redis silent this long: unhealthy */

/* ---- Redis: liveness, and the dead workers' consumers ---- */

static void on_pong(redisAsyncContext *ac, void *rp, void *priv) {
    jq_master_t *m = priv;
    redisReply *r = rp;
    if (r && r->type == REDIS_REPLY_STATUS) m->last_pong_ms = jq_now_ms();
}

static void on_janitor(uv_timer_t *t) {
    jq_master_t *m = t->data;
    /* A Redis that stopped answering keeps its socket open: only a reply
     * tells /healthz that it is really there. */
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "PING");
    if (m->redis.up) jq_rconn_args(&m->redis, &a, on_pong, m);
    jq_args_destroy(&a);
    jq_handback_pass(&m->handback);
    jq_handback_sweep(&m->handback, jq_now_ms());
}

/* ---- the end ---- */

void jq_master_finish(jq_master_t *m) {
    if (!jq_supervise_done(&m->sv)) return;
    jq_info("all workers exited; master exiting");
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
    uv_close((uv_handle_t *)&m->kill_timer, NULL);
    uv_close((uv_handle_t *)&m->janitor, NULL);
    for (int i = 0; i < m->opt->workers; i++) uv_close((uv_handle_t *)&m->respawn[i], NULL);
    jq_dashsrv_close(m->dash); /* before the server its routes are on */
    m->dash = NULL;
    if (m->http) jq_httpd_close(m->http, NULL, NULL);
    m->http = NULL;
    jq_metrics_close(m->metrics); /* after the server: no scrape reaches it now */
    m->metrics = NULL;
    if (uv_is_active((uv_handle_t *)&m->sigchld)) uv_close((uv_handle_t *)&m->sigchld, NULL);
    /* Give the handback of the last exits a chance to be written. */
    jq_handback_pass(&m->handback);
    jq_rconn_close(&m->redis, 1, NULL);
    if (m->cluster) jq_rcluster_close(m->cluster, NULL, NULL);
    if (m->has_switchsub) jq_switchsub_close(&m->switchsub, NULL);
}

/* ---- signals ---- */

static void on_kill_timeout(uv_timer_t *t) {
    jq_master_t *m = t->data;
    jq_supervise_kill_all(&m->sv);
}

static void on_sighup(jq_master_t *m) {
    if (m->sv.shutting_down) return;
    if (m->sv.roll_next >= 0) {
        jq_info("SIGHUP: a rolling restart is already under way");
        return;
    }
    jq_info("SIGHUP: rolling restart of %lld workers", m->opt->workers);
    jq_notify_reloading("rolling restart");
    jq_supervise_roll(&m->sv);
}

static void on_signal(uv_signal_t *s, int signum) {
    jq_master_t *m = s->data;
    if (signum == SIGHUP) {
        on_sighup(m);
        return;
    }
    if (++m->signals > 1) {
        jq_info("second signal: stopping workers now");
        jq_supervise_stop_all(&m->sv);
        return;
    }
    jq_notify_stopping("draining");
    jq_info("%s: draining %d workers (up to %lld ms)", strsignal(signum),
            jq_supervise_count(&m->sv), m->opt->shutdown_timeout_ms);
    jq_supervise_shutdown(&m->sv);
    int rc = uv_timer_start(&m->kill_timer, on_kill_timeout,
                            (uint64_t)(m->opt->shutdown_timeout_ms + KILL_MARGIN_MS), 0);
    if (rc != 0) jq_error("cannot arm the shutdown kill timer: %s", uv_strerror(rc));
    jq_master_finish(m);
}

/* As PID 1, every orphan of the container becomes our child: reap those
 * that exited, leaving the workers to libuv. */
static void on_sigchld(uv_signal_t *s, int signum) {
    jq_master_t *m = s->data;
    int n = jq_supervise_count(&m->sv), i = 0;
    int *keep = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!keep) return;
    for (jq_supervised_t *w = m->sv.workers; w; w = w->next) keep[i++] = w->pid;
    jq_reap_orphans(keep, n);
    free(keep);
}

/* ---- HTTP: /healthz (and the routes of other modules) ---- */

static void local_metrics(jq_metrics_local_t *out, void *data) {
    jq_master_t *m = data;
    out->workers_configured = m->opt->workers;
    out->workers_serving = jq_supervise_serving(&m->sv);
    out->worker_starts = m->sv.starts;
    out->worker_crashes = m->sv.crashes;
    out->worker_recycles = m->sv.recycles;
    out->redis_up = m->redis.up;
}

/* Healthy: Redis answers, and every worker slot has a worker that said
 * ready and is not draining. Otherwise 503 with the reason. */
static void on_healthz(jq_http_req_t *req, void *data) {
    jq_master_t *m = data;
    char why[128];
    int ok = jq_supervise_healthy(&m->sv, m->redis.up, jq_now_ms() - m->last_pong_ms, PONG_STALE_MS,
                                  why, sizeof(why) - 1);
    strcat(why, "\n");
    jq_httpd_respond_text(req, ok ? 200 : 503, why);
}

/* The web dashboard at / of the HTTP server (dashsrv.h). Its token is
 * never logged: only whether there is one. */
static int start_dashboard(jq_master_t *m) {
    const jq_options_t *o = m->opt;
    if (!o->dashboard) return 0;
    char err[256];
    m->dash = jq_dashsrv_new(m->loop, m->http, o->redis, &o->tls_client, o->prefix, o->admin_token,
                             o->heartbeat_ms, err, sizeof(err));
    if (!m->dash) {
        jq_error("dashboard: %s", err);
        return -1;
    }
    jq_info("dashboard: http://%s/ (%s)", o->metrics_addr,
            o->admin_token[0] ? "actions need the admin token" : "read-only: no --admin-token");
    return 0;
}

static int start_http(jq_master_t *m) {
    if (!m->opt->metrics_addr[0]) return 0;
    char err[256];
    m->http = jq_httpd_new(m->loop, m->opt->metrics_addr, err, sizeof(err));
    if (!m->http) {
        jq_error("--metrics-addr: %s", err);
        return -1;
    }
    if (jq_httpd_route(m->http, "GET", "/healthz", on_healthz, m) < 0 ||
        jq_httpd_reserve(m->http, "/healthz") < 0) {
        jq_error("http: cannot add /healthz");
        jq_httpd_close(m->http, NULL, NULL);
        m->http = NULL;
        return -1;
    }
    m->metrics = jq_metrics_new(m->loop, m->http, m->opt, local_metrics, m);
    if (!m->metrics) jq_warn("http: /metrics not served (out of memory)");
    jq_info("http: listening on %s (port %d): /healthz /metrics", m->opt->metrics_addr,
            jq_httpd_port(m->http));
    if (start_dashboard(m) < 0) {
        jq_httpd_close(m->http, NULL, NULL);
        m->http = NULL;
        return -1;
    }
    return 0;
}

/* Redis refusing the master's handshake at start (a wrong password or
 * database) is a configuration error, reported once, here: the workers
 * stop and the master exits JQ_MASTER_EXIT_CONFIG. Redis not answering at
 * all is an outage: everything keeps retrying (in compose, Redis may come
 * up after us), and the workers serve as soon as it does. */
static void on_redis_up(jq_rconn_t *c) {
    jq_master_t *m = c->data;
    /* From now on a refusal (a password rotated under us) is an outage:
     * logged once, retried. */
    c->on_refused = NULL;
    m->last_pong_ms = jq_now_ms();
    jq_handback_pass(&m->handback);
}

static void on_redis_refused(jq_rconn_t *c, const char *step, const char *why) {
    jq_master_t *m = c->data;
    char url[512];
    jq_url_format(c->url, url, sizeof(url));
    if (strcmp(step, "TLS") == 0)
        jq_error("TLS with redis at %s: %s; check --redis-tls-ca, --redis-tls-cert/key and "
                 "--redis-tls-server-name (JOBQ_REDIS_TLS_*); exiting",
                 url, why);
    else
        jq_error("redis at %s refused our %s: %s; check the %s in --redis / JOBQ_REDIS_URL; "
                 "exiting",
                 url, step, why,
                 strcmp(step, "SENTINEL") == 0 ? "master name and ?sentinel_password="
                                               : "user, password and database");
    m->exit_code = JQ_MASTER_EXIT_CONFIG;
    /* The workers, started meanwhile, were refused as well (they retry
     * quietly, leaving the message to us): they hold no job. */
    jq_supervise_shutdown(&m->sv);
    jq_master_finish(m);
}

/* +switch-master (switchsub.h): the master's connection and every
 * worker's move to the new master now, not when the old one, left up as a
 * replica, starts refusing. */
static void on_switch(void *data, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                      const jq_url_addr_t *now) {
    jq_master_t *m = data;
    jq_info("sentinel %s:%d: +switch-master %s from %s:%d to %s:%d", sentinel->host, sentinel->port,
            m->opt->url.master_name, old->host, old->port, now->host, now->port);
    jq_rconn_switch(&m->redis, sentinel, old, now);
    jq_master_tell_switch(m, sentinel, old, now);
}

/* The signals the master handles; 0 or a libuv error. */
static int start_signals(jq_master_t *m) {
    int rc;
    uv_signal_t *sigs[] = {&m->sigterm, &m->sigint, &m->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if ((rc = uv_signal_init(m->loop, sigs[i])) != 0) return rc;
        sigs[i]->data = m;
        if ((rc = uv_signal_start(sigs[i], on_signal, nums[i])) != 0) return rc;
    }
    if (getpid() != 1) return 0;
    if ((rc = uv_signal_init(m->loop, &m->sigchld)) != 0) return rc;
    m->sigchld.data = m;
    return uv_signal_start(&m->sigchld, on_sigchld, SIGCHLD);
}

/* The timers: one per slot for respawns, the shutdown's kill timer, the
 * janitor; 0 or a libuv error. */
static int start_timers(jq_master_t *m) {
    int rc;
    for (int i = 0; i < m->opt->workers; i++) {
        if ((rc = uv_timer_init(m->loop, &m->respawn[i])) != 0) return rc;
        m->respawn[i].data = m;
    }
    if ((rc = uv_timer_init(m->loop, &m->kill_timer)) != 0) return rc;
    m->kill_timer.data = m;
    if ((rc = uv_timer_init(m->loop, &m->janitor)) != 0) return rc;
    m->janitor.data = m;
    return uv_timer_start(&m->janitor, on_janitor, JANITOR_MS, JANITOR_MS);
}

/* Every handle the master needs before its loop runs; on failure says
 * which and leaves the ones made so far to the loop (the caller exits). */
static int master_init(jq_master_t *m, const jq_options_t *opt) {
    jq_supervise_ops_t o = jq_master_ops;
    o.data = m;
    m->respawn = calloc((size_t)opt->workers, sizeof(uv_timer_t));
    if (!m->respawn || jq_supervise_init(&m->sv, (int)opt->workers, &o) != 0) {
        jq_error("out of memory for %lld worker slots", opt->workers);
        return -1;
    }
    int rc = start_timers(m);
    if (rc == 0) rc = start_signals(m);
    if (rc != 0) {
        jq_error("master init: %s", uv_strerror(rc));
        return -1;
    }
    if (jq_rconn_init(&m->redis, m->loop, &opt->url, opt->tls, "master") != 0) {
        jq_error("cannot start the redis connection");
        return -1;
    }
    m->redis.data = m;
    m->redis.on_up = on_redis_up;
    if (opt->url.cluster && (!(m->cluster = jq_rcluster_new(m->loop, &opt->url, opt->tls)) ||
                             jq_rcluster_attach(m->cluster, &m->redis, 0) != 0)) {
        jq_error("cannot start the redis cluster router");
        return -1;
    }
    m->redis.on_refused = on_redis_refused;
    if (jq_url_sentinel(&opt->url)) {
        if (jq_switchsub_init(&m->switchsub, m->loop, &opt->url, opt->tls, on_switch, m) != 0) {
            jq_error("cannot start the +switch-master subscription");
            return -1;
        }
        m->has_switchsub = 1;
    }
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    jq_handback_init(&m->handback, &m->redis, opt, host, jq_master_tell_reclaim, m);
    return 0;
}

int jq_master_main(const jq_options_t *opt, int argc, char **argv) {
    static jq_master_t mm;
    jq_master_t *m = &mm;
    m->loop = uv_default_loop();
    m->opt = opt;
    m->argc = argc;
    m->argv = argv;
    size_t sz = sizeof(m->exe);
    if (uv_exepath(m->exe, &sz) != 0) snprintf(m->exe, sizeof(m->exe), "%s", argv[0]);
    char url[512];
    jq_url_format(&opt->url, url, sizeof(url));
    jq_info("jobq-consumer master pid %d: %lld workers x %lld cpu threads (%d usable cpus), queues "
            "%s, redis %s",
            (int)getpid(), opt->workers, opt->threads, opt->cpus, opt->queues_csv, url);
    jq_opts_log(jq_options_table, opt);
    if (opt->url.tls && opt->tls_opts.insecure) jq_warn("%s", JQ_TLS_INSECURE_WARNING);
    signal(SIGPIPE, SIG_IGN);
    if (start_http(m) < 0) {
        uv_run(m->loop, UV_RUN_DEFAULT); /* the failed listener's close */
        uv_loop_close(m->loop);
        return 3;
    }

    if (master_init(m, opt) != 0) {
        /* Nothing runs yet: no worker, no job. Exit without unwinding the
         * loop, whose handles die with the process. */
        return JQ_MASTER_EXIT_INIT;
    }
    for (int i = 0; i < opt->workers; i++) jq_master_spawn(m, i);
    uv_run(m->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(m->loop);
    if (rc != 0) jq_warn("master loop closed with handles left: %s", uv_strerror(rc));
    jq_supervise_destroy(&m->sv);
    free(m->respawn);
    jq_rcluster_free(m->cluster);
    return m->exit_code;
}
