/* A worker process: its loop, its capacity, and its life from start to a
 * graceful (or forced) exit. See worker.h for how the modules split. */

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attempt.h"
#include "log.h"
#include "reclaim.h"
#include "sched.h"
#include "ticks.h"
#include "worker.h"

#define TICK_MS 100
/* One EXISTS per queue (paused, cancel: cancel.h), every 100 ms, every
 * 50 ms while the worker holds jobs (a running job stops within 100 ms
 * of its cancel); a little under, for the timer's own jitter. */
#define FLAGS_TIMER_MS 50
#define FLAGS_IDLE_MS 90
#define FLAGS_BUSY_MS 45
/* Longer than rconn's longest reconnect backoff (2 s). */
#define RECONNECT_RECLAIM_PAUSE_MS 2500

/* ---- the stages' callbacks (stage.h) ---- */

void jq_worker_start_cb(void *wp, jq_run_t *r) {
    jq_worker_t *w = wp;
    if (jq_cancel_vet(&w->cancel, r)) return; /* checked first */
    jq_attempt_start(w, r);
}
void jq_worker_vetted_cb(void *w, jq_run_t *r) { jq_attempt_start(w, r); }
void jq_worker_stop_cb(void *w, jq_run_t *r) { jq_attempt_cancel(w, r); }
void jq_worker_cancels_cb(void *w, int q, int any) {
    jq_cancel_learned(&((jq_worker_t *)w)->cancel, q, any, jq_now_ms());
}
void jq_worker_kick_cb(void *w) { jq_fetch_kick(&((jq_worker_t *)w)->fetch); }
void jq_worker_exit_cb(void *w) { jq_worker_maybe_exit(w); }
void jq_worker_read_failed_cb(void *w, const char *err) {
    jq_qhealth_read_failed(&((jq_worker_t *)w)->qhealth, err);
}
void jq_worker_key_error_cb(void *w, int q, const char *err) {
    jq_qhealth_key_error(&((jq_worker_t *)w)->qhealth, q, err);
}

/* Only the real worker reads limited queues: the stage tests' fetch has
 * no limit_kick. */
static int64_t limit_kick_cb(void *w) { return jq_limit_kick(&((jq_worker_t *)w)->limit); }

void jq_worker_stats_cb(void *wp, jq_heartbeat_stats_t *st) {
    jq_worker_t *w = wp;
    st->processed = w->processed;
    st->failed = w->failed;
    st->jobs_done = w->jobs_done;
    st->busy_io = w->busy_io;
    st->busy_cpu = jq_pool_busy(&w->pool);
    st->cpu_backlog = jq_pool_backlog(&w->pool);
    st->loop_lag_us = w->loop_lag_us;
    w->loop_lag_us = 0;
}

void jq_worker_recycle_cb(void *w, const char *msg, const char *why) {
    jq_worker_tell(w, msg);
    jq_worker_drain(w, why);
}

/* ---- control channel to the master ---- */

void jq_worker_tell(jq_worker_t *w, const char *msg) {
    if (!w->has_ctl) return;
    char line[128];
    int n = snprintf(line, sizeof(line), "%s\n", msg);
    uv_buf_t b = uv_buf_init(line, (unsigned)n);
    uv_try_write((uv_stream_t *)&w->ctl, &b, 1);
}

static void on_ctl_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    static char buf[256];
    *b = uv_buf_init(buf, sizeof(buf));
}

static void force_stop(jq_worker_t *w);

/* "switch-master S SPORT OLD OPORT NEW NPORT" (master.h): the master's
 * subscription heard +switch-master; both connections move now. */
static void ctl_switch(jq_worker_t *w, const char *buf, size_t n) {
    static const char word[] = "switch-master ";
    char line[256];
    for (size_t i = 0; i + sizeof(word) - 1 <= n; i++) {
        if (memcmp(buf + i, word, sizeof(word) - 1) != 0) continue;
        const char *end = memchr(buf + i, '\n', n - i);
        size_t len = end ? (size_t)(end - (buf + i)) : 0;
        if (!end || len >= sizeof(line)) return;
        memcpy(line, buf + i, len);
        line[len] = '\0';
        jq_url_addr_t s, old, now;
        if (sscanf(line, "switch-master %255s %d %255s %d %255s %d", s.host, &s.port, old.host,
                   &old.port, now.host, &now.port) != 6)
            return;
        jq_rconn_switch(&w->rwrite, &s, &old, &now);
        jq_rconn_switch(&w->rfetch, &s, &old, &now);
        return;
    }
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    jq_worker_t *w = s->data;
    if (n < 0) {
        /* The master is gone: nobody would replace or stop us. */
        uv_read_stop(s);
        jq_worker_drain(w, "master went away");
        return;
    }
    /* "stop": the master got a second signal. Sent on the pipe, not as a
     * signal, because a worker draining on its own never got the first
     * one. One short write, so it arrives whole. */
    for (ssize_t i = 0; i + 5 <= n; i++)
        if (memcmp(b->base + i, "stop\n", 5) == 0) {
            jq_info("master says stop: stopping now");
            force_stop(w);
            return;
        }
    /* "reclaim": the master handed a dead worker's entries back; take them
     * now instead of at the next reclaim tick (unless the pause after an
     * outage holds reclaiming back). */
    ctl_switch(w, b->base, (size_t)n);
    for (ssize_t i = 0; i + 8 <= n; i++)
        if (memcmp(b->base + i, "reclaim\n", 8) == 0) {
            jq_reclaim_now(&w->reclaim, jq_now_ms());
            break;
        }
}

/* ---- shutdown ---- */

static void on_handle_closed(uv_handle_t *h) {
    jq_worker_t *w = h->data;
    w->pending_closes--;
}

static void close_handle(jq_worker_t *w, uv_handle_t *h) {
    if (uv_is_closing(h)) return;
    h->data = w;
    w->pending_closes++;
    uv_close(h, on_handle_closed);
}

static void on_rconn_closed(jq_rconn_t *c) { ((jq_worker_t *)c->data)->pending_closes--; }
static void on_cluster_closed(void *w) { ((jq_worker_t *)w)->pending_closes--; }
static void on_pool_closed(jq_pool_t *p) { ((jq_worker_t *)p->data)->pending_closes--; }

static void stop_all(jq_worker_t *w) {
    if (w->stopping) return;
    w->stopping = 1;
    if (jq_pool_busy(&w->pool) > 0 || jq_pool_backlog(&w->pool) > 0) {
        /* A cpu thread is stuck: it cannot be joined. Its entry is still
         * pending in Redis and will run elsewhere. */
        jq_warn("exiting with a cpu job still running; it will be run again elsewhere");
        _exit(w->exit_code);
    }
    close_handle(w, (uv_handle_t *)&w->tick);
    close_handle(w, (uv_handle_t *)&w->flags);
    close_handle(w, (uv_handle_t *)&w->cancel.check);
    close_handle(w, (uv_handle_t *)&w->heartbeat);
    close_handle(w, (uv_handle_t *)&w->shutdown_timer);
    close_handle(w, (uv_handle_t *)&w->sigterm);
    close_handle(w, (uv_handle_t *)&w->sigint);
    close_handle(w, (uv_handle_t *)&w->sighup);
    close_handle(w, (uv_handle_t *)&w->finish.flush_check);
    if (w->has_ctl) close_handle(w, (uv_handle_t *)&w->ctl);
    w->pending_closes += 3;
    w->rfetch.data = w->rwrite.data = w;
    jq_rconn_close(&w->rfetch, 0, on_rconn_closed);
    jq_rconn_close(&w->rwrite, 1, on_rconn_closed);
    if (w->cluster) {
        w->pending_closes++;
        jq_rcluster_close(w->cluster, on_cluster_closed, w);
    }
    w->pool.data = w;
    jq_pool_close(&w->pool, on_pool_closed);
    /* The --proc processes: their exits end the loop's last handles. */
    jq_handlers_stop();
}

/* Replies on the write connection that a drain waits for, each counted by
 * the stage that sent them: finish's EXECs, trim passes, reads behind the
 * acks. */
static int flushing(const jq_worker_t *w) {
    return jq_finish_flying(&w->finish) + jq_trim_busy(&w->trim) + w->fetch.pipe_reads;
}

void jq_worker_maybe_exit(jq_worker_t *w) {
    if (!w->draining || w->stopping) return;
    /* Abandoned cpu runs (past their timeout) do not hold the exit: their
     * outcome is written, and only ending the process frees their thread.
     * A read in flight does (at most its BLOCK time): Redis may have
     * delivered entries to us already, and handed back after our exit they
     * would count one more delivery, so that a max_attempts 1 job caught
     * by a rolling restart would die "worker lost" without running. */
    if (w->running.n || w->waiting.n || jq_chunks_busy(&w->chunks) ||
        jq_reclaim_busy(&w->reclaim) || jq_fetch_busy(&w->fetch) || jq_limit_busy(&w->limit) ||
        jq_cancel_busy(&w->cancel) || w->busy_cpu > (int)w->abandoned.n)
        return;
    if (jq_finish_pending(&w->finish) && w->rwrite.up) jq_finish_flush(&w->finish);
    if (jq_finish_pending(&w->finish) || flushing(w)) return;
    if (!jq_finish_held(&w->finish)) jq_trim_all(&w->trim);
    if (flushing(w)) return; /* the last trim passes */
    jq_info("drained; exiting");
    stop_all(w);
}

static void on_shutdown_timeout(uv_timer_t *t);

void jq_worker_drain(jq_worker_t *w, const char *why) {
    if (w->draining) return;
    w->draining = 1;
    jq_info("draining (%s): %zu jobs running", why, w->running.n + w->waiting.n);
    /* Whatever the reason (signal, recycling, a stuck cpu thread with jobs
     * queued behind it), a drain ends within the shutdown timeout. */
    int rc = uv_timer_start(&w->shutdown_timer, on_shutdown_timeout,
                            (uint64_t)w->opt->shutdown_timeout_ms, 0);
    if (rc != 0) jq_error("drain: cannot arm the shutdown timeout: %s", uv_strerror(rc));
    /* The drain waits for the blocking read; cut its wait short. Unblocked,
     * it returns as if it timed out: it delivered nothing. */
    jq_fetch_unblock(&w->fetch);
    jq_worker_maybe_exit(w);
}

static void force_stop(jq_worker_t *w) {
    /* Unfinished jobs are left pending in Redis, unacked: the next
     * consumer runs them. Only their memory is ours to drop. */
    jq_run_t *r, *next;
    for (r = w->running.head; r; r = next) {
        next = r->next;
        if (r->h->kind == JQ_KIND_IO) {
            if (r->h->cancel) r->h->cancel(&r->task);
            jq_runlist_remove(&w->running, r);
            w->busy_io--;
            jq_run_free(r);
        }
    }
    for (r = w->waiting.head; r; r = next) {
        next = r->next;
        jq_runlist_remove(&w->waiting, r);
        jq_run_free(r);
    }
    jq_cancel_drop(&w->cancel);
    w->draining = 1;
    if (w->busy_cpu) {
        jq_warn("stopping with %d cpu jobs unfinished; they stay pending", w->busy_cpu);
        _exit(w->exit_code);
    }
    stop_all(w);
}

static void on_shutdown_timeout(uv_timer_t *t) {
    jq_worker_t *w = t->data;
    jq_warn("shutdown timeout: %zu jobs left pending for the next consumer",
            w->running.n + w->waiting.n);
    force_stop(w);
}

static void on_signal(uv_signal_t *s, int signum) {
    jq_worker_t *w = s->data;
    /* Counted apart from draining: a worker draining on its own (recycling)
     * must not take the master's first SIGTERM as the "stop now" one. */
    static int signals;
    if (++signals > 1) {
        jq_info("second signal: stopping now");
        force_stop(w);
        return;
    }
    const char *why = signum == SIGHUP ? "SIGHUP" : signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (w->draining) jq_info("%s: already draining", why);
    jq_worker_drain(w, why);
}

/* ---- the tick: timeouts, pause, and the periodic duties ---- */

static void on_tick(uv_timer_t *t) {
    jq_worker_t *w = t->data;
    int64_t now = jq_now_ms();
    if (w->tick_due_ms) {
        /* The worst tick since the last heartbeat, which resets it. */
        int64_t lag = now - w->tick_due_ms;
        if (lag * 1000 > w->loop_lag_us) w->loop_lag_us = lag * 1000;
    }
    w->tick_due_ms = now + TICK_MS;
    jq_attempt_timeouts(w, now);
    jq_limit_tick(&w->limit, now);
    jq_settings_tick(&w->settings, now);
    jq_qhealth_tick(&w->qhealth, now);
    jq_sched_tick(&w->sched, now);
    jq_ticks_tick(&w->ticks, now);
    jq_reclaim_tick(&w->reclaim, now);
    /* held: Redis refuses writes (finish.c); the ids wait with the rest. */
    if (!jq_finish_held(&w->finish)) jq_trim_tick(&w->trim);
    jq_fetch_retry(&w->fetch);
    jq_worker_maybe_exit(w);
}

static void on_flags(uv_timer_t *t) {
    jq_worker_t *w = t->data;
    int busy = w->running.n || w->waiting.n;
    int64_t now = jq_now_ms();
    jq_fetch_check_paused(&w->fetch, now, busy ? FLAGS_BUSY_MS : FLAGS_IDLE_MS);
    jq_progress_flush(&w->progress, now);
}

static void on_heartbeat(uv_timer_t *t) { jq_heartbeat_send(&((jq_worker_t *)t->data)->beat); }

/* Ready once the groups exist: this PING follows the XGROUP CREATEs on the
 * same connection, so its reply comes after theirs. A client that sees
 * "ready" (the master, a test) may then read the group at once. */
static void on_groups_ready(redisAsyncContext *ac, void *rp, void *priv) {
    jq_worker_t *w = priv;
    if (!rp || w->ready_sent || w->stopping) return; /* lost: the next on_fetch_up */
    w->ready_sent = 1;
    jq_worker_tell(w, "ready");
    jq_info("worker %s ready: queues %s, %lld cpu threads, %lld io slots", w->id,
            w->opt->queues_csv, w->opt->threads, w->opt->io_concurrency);
}

static void on_fetch_up(jq_rconn_t *c) {
    jq_worker_t *w = c->data;
    c->quiet_refusals = 0;
    static int connected_before; /* one worker per process */
    /* The blocking read's reply may have been lost with the connection
     * (a kill, an output-buffer limit, a reset) after Redis delivered its
     * entries to us. When the write connection stayed up, its own
     * reconnect will not look for them: look now, or they would wait for
     * the visibility timeout and count a delivery that never ran. */
    if (connected_before++ > 0) jq_reclaim_own_soon(&w->reclaim, jq_now_ms());
    jq_fetch_connected(&w->fetch);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "PING");
    jq_rconn_args(&w->rfetch, &a, on_groups_ready, w);
    jq_args_destroy(&a);
    jq_fetch_kick(&w->fetch);
}

static void on_write_up(jq_rconn_t *c) {
    jq_worker_t *w = c->data;
    c->quiet_refusals = 0;
    static int connected_before; /* one worker per process */
    int reconnected = connected_before++ > 0;
    if (reconnected) {
        /* Back after an outage. What we hold idled through it, like every
         * other worker's entries: renew ours at once, and reclaim nothing
         * until the others (reconnecting up to one backoff later) renewed
         * theirs; else their running jobs would look abandoned and run
         * twice. */
        jq_reclaim_reconnected(&w->reclaim, jq_now_ms(), RECONNECT_RECLAIM_PAUSE_MS);
    }
    /* A queue's fetch waits for its limit and pause flags (unknown: -1).
     * Ask now, not at the next tick and flags timer: those fired while the
     * connection was down and came back 50-100 ms later, the first job of
     * every (re)started worker with them. */
    int64_t now = jq_now_ms();
    jq_limit_tick(&w->limit, now);
    jq_settings_tick(&w->settings, now);
    jq_fetch_check_paused(&w->fetch, now, 0);
    jq_sched_on_connect(&w->sched);
    jq_ticks_on_connect(&w->ticks);
    jq_heartbeat_send(&w->beat);
    jq_finish_flush(&w->finish);
    if (reconnected) jq_reclaim_own(&w->reclaim);
}

static void on_fetch_skipping(jq_rconn_t *c) { jq_fetch_aside(&((jq_worker_t *)c->data)->fetch); }

/* ---- main ---- */

long long jq_worker_bulk_cap(long long max_payload) {
    return max_payload > JQ_BULK_CAP_MIN ? max_payload : JQ_BULK_CAP_MIN;
}

long long jq_worker_read_max(long long max_payload) {
    long long n = JQ_READ_BYTES / jq_worker_bulk_cap(max_payload);
    return n > 0 ? n : 1;
}

/* The worker's state before any handle: its name, its limits, its
 * stages' state. */
static void init_state(jq_worker_t *w, const jq_options_t *opt) {
    w->opt = opt;
    w->started_ms = jq_now_ms();
    gethostname(w->host, sizeof(w->host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%d", w->host, (int)getpid());
    w->limits.max_payload = opt->max_payload;
    w->limits.timeout_ms = opt->timeout_ms;
    /* Read a little past the cpu threads so that a thread finishing a job
     * finds the next one already here, without a round trip. */
    jq_admit_init(&w->admit, opt->io_concurrency, 2 * opt->threads, opt->nqueues, opt->queue_limit);
    jq_admit_set_weights(&w->admit, opt->queue_weight, opt->nqueues);
    jq_admit_set_read_ahead(&w->admit, opt->read_ahead);
    jq_admit_set_read_max(&w->admit, jq_worker_read_max(opt->max_payload));
    jq_runs_init(&w->runs, &w->admit);
    jq_stage_env_t env = jq_worker_env(w);
    jq_trim_init(&w->trim, &env);
    jq_finish_init(&w->finish, &env, &w->trim);
    jq_chunks_init(&w->chunks, &env, &w->finish);
    jq_fetch_borrow_t borrow = jq_worker_fetch_borrow(w);
    borrow.limit_kick = limit_kick_cb;
    jq_fetch_init(&w->fetch, &env, &borrow);
    jq_limit_borrow_t lborrow = {&w->fetch, &w->finish, &w->draining};
    jq_limit_init(&w->limit, &env, &lborrow);
    jq_settings_init(&w->settings, &env);
    jq_qhealth_init(&w->qhealth, &env, &w->fetch);
    jq_reclaim_borrow_t rborrow = jq_worker_reclaim_borrow(w);
    jq_reclaim_init(&w->reclaim, &env, &rborrow);
    jq_sched_init(&w->sched, &env, &w->draining, jq_worker_key_error_cb);
    jq_cancel_borrow_t cborrow = jq_worker_cancel_borrow(w);
    jq_cancel_init(&w->cancel, &env, &cborrow);
    jq_ticks_init(&w->ticks, &env, &w->draining);
    jq_progress_init(&w->progress, &env, &w->running);
    jq_heartbeat_borrow_t hborrow = jq_worker_heartbeat_borrow(w);
    jq_heartbeat_init(&w->beat, &env, &hborrow);
    srand((unsigned)(getpid() ^ w->started_ms));
    w->nqueues = opt->nqueues;
    for (int i = 0; i < opt->nqueues; i++) {
        w->queues[i].name = opt->queues[i];
        jq_key(w->queues[i].stream, sizeof(w->queues[i].stream), opt->prefix, opt->queues[i],
               "stream");
        /* Unknown until the first EXISTS answers (on_paused): a queue
         * paused before this worker started must not give it a job. */
        w->queues[i].paused = -1;
        w->queues[i].limited = -1; /* the same for a limit (limit.c) */
        w->queues[i].cancels = -1;
        w->queues[i].levels_unknown = 1;
    }
}

/* The loop, the handlers and the cpu pool. Returns 0, or -1 (logged). */
static int init_runners(jq_worker_t *w, const jq_options_t *opt) {
    char err[JQ_ERR_LEN];
    int lrc = uv_loop_init(&w->loop);
    if (lrc != 0) {
        jq_error("worker init: event loop: %s", uv_strerror(lrc));
        return -1;
    }
    jq_registry_init(&w->reg);
    if (jq_handlers_setup(&w->reg, opt, err, sizeof(err)) != 0) {
        /* A configuration error (a bad --exec or --plugin): exit 2, as the
         * master does for the same setup; nothing but the loop is made. */
        jq_error("handlers: %s", err);
        (void)uv_loop_close(&w->loop); /* no handle yet: it cannot be busy */
        w->exit_code = 2;
        return -1;
    }
    jq_stage_env_t env = jq_worker_env(w);
    if (jq_types_init(&w->types, &env, &w->reg) != 0) {
        jq_error("worker init: out of memory");
        return -1;
    }
    if (jq_pool_init(&w->pool, &w->loop, (int)opt->threads, err, sizeof(err)) != 0) {
        jq_error("cpu pool: %s", err);
        return -1;
    }
    int rc = jq_handlers_start(&w->loop);
    if (rc != 0) {
        jq_error("worker init: handler processes: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* The tick, heartbeat and shutdown timers. Returns 0 or a libuv error. */
static int init_timers(jq_worker_t *w, const jq_options_t *opt) {
    int rc;
    if ((rc = uv_timer_init(&w->loop, &w->tick)) != 0 ||
        (rc = uv_timer_init(&w->loop, &w->flags)) != 0 ||
        (rc = uv_timer_init(&w->loop, &w->heartbeat)) != 0 ||
        (rc = uv_timer_init(&w->loop, &w->shutdown_timer)) != 0)
        return rc;
    w->tick.data = w->flags.data = w->heartbeat.data = w->shutdown_timer.data = w;
    if ((rc = uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS)) != 0 ||
        (rc = uv_timer_start(&w->flags, on_flags, 0, FLAGS_TIMER_MS)) != 0 ||
        (rc = uv_timer_start(&w->heartbeat, on_heartbeat, (uint64_t)opt->heartbeat_ms,
                             (uint64_t)opt->heartbeat_ms)) != 0)
        return rc;
    return 0;
}

/* SIGTERM, SIGINT and SIGHUP drain; SIGPIPE is ignored. Returns 0 or a
 * libuv error. */
static int init_signals(jq_worker_t *w) {
    int rc;
    uv_signal_t *sigs[] = {&w->sigterm, &w->sigint, &w->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if ((rc = uv_signal_init(&w->loop, sigs[i])) != 0) return rc;
        sigs[i]->data = w;
        if ((rc = uv_signal_start(sigs[i], on_signal, nums[i])) != 0) return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* The pipe to the master (fd 3), when there is one. Returns 0 or a libuv
 * error. */
static int init_ctl(jq_worker_t *w) {
    int rc;
    if ((rc = uv_pipe_init(&w->loop, &w->ctl, 0)) != 0) return rc;
    if (uv_pipe_open(&w->ctl, 3) != 0) return 0;
    w->has_ctl = 1;
    w->ctl.data = w;
    if ((rc = uv_read_start((uv_stream_t *)&w->ctl, on_ctl_alloc, on_ctl_read)) != 0) return rc;
    /* Under a master only its SIGTERM counts: Ctrl-C or a hangup
     * in a terminal reaches the whole process group, and the
     * master, which gets it too, decides (drain, or a rolling
     * restart). Ignored, not handled, so that one arriving while
     * the handles close cannot kill the worker either. */
    uv_signal_stop(&w->sigint);
    uv_signal_stop(&w->sighup);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    return 0;
}

/* The fetch and write connections (not connected yet). Returns 0 or -1. */
static int init_rconns(jq_worker_t *w, const jq_options_t *opt) {
    if (jq_rconn_init(&w->rfetch, &w->loop, &opt->url, opt->tls, "fetch") != 0 ||
        jq_rconn_init(&w->rwrite, &w->loop, &opt->url, opt->tls, "write") != 0)
        return -1;
    w->rfetch.data = w->rwrite.data = w;
    /* A payload over the limit is refused while it is read, never stored
     * (bulkcap.h), on both connections that bring entries. */
    jq_rconn_cap(&w->rfetch, jq_worker_bulk_cap(opt->max_payload));
    jq_rconn_cap(&w->rwrite, jq_worker_bulk_cap(opt->max_payload));
    w->rfetch.on_skipping = on_fetch_skipping;
    /* Refused before it ever connected: the master, refused the same way,
     * says so once and stops us. After that, a refusal is an outage. */
    w->rfetch.quiet_refusals = w->rwrite.quiet_refusals = 1;
    w->rfetch.on_up = on_fetch_up;
    w->rwrite.on_up = on_write_up;
    if (opt->url.cluster && (!(w->cluster = jq_rcluster_new(&w->loop, &opt->url, opt->tls)) ||
                             jq_rcluster_attach(w->cluster, &w->rfetch, 1) != 0 ||
                             jq_rcluster_attach(w->cluster, &w->rwrite, 0) != 0))
        return -1;
    return 0;
}

static int init(jq_worker_t *w, const jq_options_t *opt) {
    init_state(w, opt);
    if (init_runners(w, opt) != 0) return -1;
    /* Every handle checked: a failure says which, and the worker exits
     * (status 3) before it takes any job; the master replaces it. */
    const char *what = "finish check";
    int rc;
    if ((rc = jq_finish_start(&w->finish, &w->loop)) != 0) goto uv_err;
    what = "cancel check";
    if ((rc = jq_cancel_start(&w->cancel, &w->loop)) != 0) goto uv_err;
    what = "timers";
    if ((rc = init_timers(w, opt)) != 0) goto uv_err;
    what = "signal handlers";
    if ((rc = init_signals(w)) != 0) goto uv_err;
    what = "the master's pipe";
    if (opt->worker_role[0] && (rc = init_ctl(w)) != 0) goto uv_err;
    what = "redis connections";
    if (init_rconns(w, opt) != 0) {
        rc = 0;
        goto uv_err;
    }
    return 0;
uv_err:
    jq_error("worker init: %s: %s", what, rc ? uv_strerror(rc) : "failed");
    return -1;
}

int jq_worker_main(const jq_options_t *opt) {
    jq_worker_t *w = calloc(1, sizeof(*w));
    if (!w) return 1;
    jq_log_set_role("worker");
    /* The master's socket (fd 3, inheritable as uv_spawn passed it) is the
     * worker's alone: a --proc handler, or what a payload makes it run,
     * must not read our stop or write a recycle. Before init, which starts
     * the handler processes. An exec command's fd 3 is its progress pipe,
     * which uv_spawn sets in the child. */
    if (opt->worker_role[0]) fcntl(3, F_SETFD, FD_CLOEXEC);
    if (init(w, opt) != 0) {
        int code = w->exit_code ? w->exit_code : 3;
        free(w);
        return code;
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0) jq_warn("loop closed with handles left: %s", uv_strerror(rc));
    int code = w->exit_code;
    jq_finish_destroy(&w->finish);
    jq_trim_destroy(&w->trim);
    jq_chunks_destroy(&w->chunks);
    jq_reclaim_destroy(&w->reclaim);
    jq_fetch_destroy(&w->fetch);
    jq_limit_destroy(&w->limit);
    jq_cancel_destroy(&w->cancel);
    jq_progress_destroy(&w->progress);
    jq_types_destroy(&w->types);
    jq_runs_destroy(&w->runs);
    jq_rcluster_free(w->cluster);
    free(w);
    return code;
}
