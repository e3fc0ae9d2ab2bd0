/* A worker process: its loop, its capacity, and its life from start to a
 * graceful (or forced) exit. See worker.h for how the modules split. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "reclaim.h"
#include "sched.h"
#include "worker.h"

#define TICK_MS 100
#define PAUSE_CHECK_MS 100 /* one EXISTS per queue: cheap, and pause bites fast */
/* Longer than rconn's longest reconnect backoff (2 s). */
#define RECONNECT_RECLAIM_PAUSE_MS 2500

/* ---- starting and ending attempts ---- */

static void end_attempt(jq_worker_t *w, jq_run_t *r);

static void on_io_done(jq_task_t *t) {
    jq_run_t *r = t->owner;
    if (r->state != JQ_RUN_RUNNING) return;
    end_attempt(r->w, r);
}

/* Wall-clock ms at monotonic time ns: the wall clock read at most every
 * 100 ms plus the monotonic time since, so that a run's start reads one
 * clock, not two (each read is ~1% of a noop job's CPU). It can be up to a
 * millisecond early, and a step of the wall clock shows within 100 ms. */
static int64_t run_wall_ms(jq_worker_t *w, uint64_t ns) {
    if (!w->wall_at_ns || ns - w->wall_at_ns > 100 * 1000000ULL) {
        w->wall_at_ns = ns;
        w->wall_ms = jq_now_ms();
    }
    return w->wall_ms + (int64_t)((ns - w->wall_at_ns) / 1000000);
}

static void start_io(jq_worker_t *w, jq_run_t *r) {
    r->state = JQ_RUN_RUNNING;
    r->started_ns = uv_hrtime();
    r->started_ms = run_wall_ms(w, r->started_ns);
    w->busy_io++;
    jq_runlist_push(&w->running, r);
    r->task.done_cb = on_io_done;
    if (r->h->start(&r->task) != 0) {
        if (!r->task.failed) jq_task_fail(&r->task, "%s: failed to start", r->h->name);
        end_attempt(w, r);
    }
}

static void cpu_work(jq_pool_item_t *item) {
    jq_run_t *r = item->data;
    r->h->run(&r->task);
}

static void on_cpu_done(jq_pool_item_t *item) {
    jq_run_t *r = item->data;
    jq_worker_t *w = r->w;
    w->busy_cpu--;
    if (r->state == JQ_RUN_ABANDONED) {
        /* Its outcome (a timeout) was written already. */
        jq_runlist_remove(&w->abandoned, r);
        if (r->keep == 2) jq_run_free(r);
        else r->keep = 0;
        jq_fetch_kick(w);
        jq_worker_maybe_exit(w);
        return;
    }
    r->started_ms = item->started_ms;
    end_attempt(w, r);
}

void jq_worker_run_start(jq_worker_t *w, jq_run_t *r) {
    msgpack_sbuffer_init(&r->task.result);
    r->task.payload = &r->payload;
    r->task.loop = &w->loop;
    r->task.owner = r;
    r->task.handler = r->h;
    r->task.job_id = r->job.id;
    r->task.queue = w->queues[r->q].name;
    r->task.attempt = r->job.attempt + 1;
    r->task.yield_cb = r->h->kind == JQ_KIND_CPU ? jq_pool_yield_point : NULL;
    if (r->h->kind == JQ_KIND_CPU) {
        r->state = JQ_RUN_RUNNING;
        r->started_ns = uv_hrtime();
        w->busy_cpu++;
        jq_runlist_push(&w->running, r);
        r->item.work = cpu_work;
        r->item.done = on_cpu_done;
        r->item.data = r;
        jq_pool_submit(&w->pool, &r->item);
    } else if (w->busy_io < w->opt->io_concurrency) {
        start_io(w, r);
    } else {
        r->state = JQ_RUN_WAITING;
        jq_runlist_push(&w->waiting, r);
    }
}

static void record_end(jq_worker_t *w, jq_run_t *r) {
    if (r->h && r->h->kind == JQ_KIND_CPU && r->item.started_ms) {
        r->finished_ms = jq_now_ms();
        r->run_us = (r->finished_ms - r->item.started_ms) * 1000;
    } else {
        /* The end's wall time is the start's plus the monotonic run time:
         * one clock read per end, not two (each is ~1% of a noop job's
         * CPU), and never earlier than the start if the clock steps. */
        uint64_t ns = uv_hrtime() - r->started_ns;
        r->run_us = (long long)(ns / 1000);
        r->finished_ms = r->started_ms ? r->started_ms + (int64_t)(ns / 1000000) : jq_now_ms();
    }
    if (r->task.failed) {
        r->outcome = JQ_OUT_FAILED;
        snprintf(r->error, sizeof(r->error), "%s", r->task.error);
        w->failed++;
    } else {
        r->outcome = JQ_OUT_DONE;
        w->processed++;
    }
    w->jobs_done++;
}

static void end_attempt(jq_worker_t *w, jq_run_t *r) {
    jq_runlist_remove(&w->running, r);
    if (r->h->kind == JQ_KIND_IO) w->busy_io--;
    record_end(w, r);
    jq_finish_add(w, r);
    while (w->waiting.head && w->busy_io < w->opt->io_concurrency) {
        jq_run_t *n = w->waiting.head;
        jq_runlist_remove(&w->waiting, n);
        start_io(w, n);
    }
    if (w->opt->max_jobs && w->jobs_done >= w->opt->max_jobs && !w->draining) {
        jq_worker_tell(w, "recycle max-jobs");
        jq_worker_drain(w, "reached --max-jobs");
    }
    jq_fetch_kick(w);
}

/* ---- timeouts ---- */

static void check_timeouts(jq_worker_t *w, int64_t now) {
    jq_run_t *r = w->running.head, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->h->kind == JQ_KIND_IO) {
            if (now - r->started_ms <= r->job.timeout_ms) continue;
            /* After cancel the handler never calls jq_task_done. */
            if (r->h->cancel) r->h->cancel(&r->task);
            jq_task_fail(&r->task, "timeout: attempt ran longer than %lld ms", r->job.timeout_ms);
            end_attempt(w, r);
        } else {
            int64_t s = r->item.started_ms;
            if (!s || now - s <= r->job.timeout_ms) continue;
            /* A thread cannot be cancelled safely: fail the attempt now and
             * let the thread run on; its result is dropped. */
            jq_runlist_remove(&w->running, r);
            jq_runlist_push(&w->abandoned, r);
            r->state = JQ_RUN_ABANDONED;
            r->keep = 1;
            r->started_ms = s;
            jq_task_fail(&r->task, "timeout: attempt ran longer than %lld ms", r->job.timeout_ms);
            r->finished_ms = now;
            r->run_us = (now - s) * 1000;
            r->outcome = JQ_OUT_FAILED;
            snprintf(r->error, sizeof(r->error), "%s", r->task.error);
            w->failed++;
            jq_finish_add(w, r);
        }
    }
    /* A cpu thread stuck long past its job's timeout can only be freed by
     * ending the process: ask the master for a replacement, then drain. */
    jq_run_t *a = w->abandoned.head;
    if (a && !w->draining &&
        now - a->item.started_ms > a->job.timeout_ms + w->opt->cpu_grace_ms) {
        jq_warn("cpu job %s stuck %lld ms past its timeout: recycling this worker",
                a->job.id, (long long)(now - a->item.started_ms - a->job.timeout_ms));
        jq_worker_tell(w, "recycle stuck-cpu");
        jq_worker_drain(w, "stuck cpu thread");
    }
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
    for (ssize_t i = 0; i + 8 <= n; i++)
        if (memcmp(b->base + i, "reclaim\n", 8) == 0) {
            jq_reclaim_now(w, jq_now_ms());
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
    w->pool.data = w;
    jq_pool_close(&w->pool, on_pool_closed);
}

void jq_worker_maybe_exit(jq_worker_t *w) {
    if (!w->draining || w->stopping) return;
    /* Abandoned cpu runs (past their timeout) do not hold the exit: their
     * outcome is written, and only ending the process frees their thread.
     * A read in flight does (at most its BLOCK time): Redis may have
     * delivered entries to us already, and handed back after our exit they
     * would count one more delivery, so that a max_attempts 1 job caught
     * by a rolling restart would die "worker lost" without running. */
    if (w->running.n || w->waiting.n || w->loading || jq_reclaim_busy(&w->reclaim) || jq_fetch_busy(&w->fetch) ||
        w->busy_cpu > (int)w->abandoned.n)
        return;
    if (jq_finish_pending(&w->finish) && w->rwrite.up) jq_finish_flush(w);
    if (jq_finish_pending(&w->finish) || w->flushing) return;
    jq_trim_all(w);
    if (w->flushing) return; /* the last trim passes */
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
    jq_fetch_unblock(w);
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
    check_timeouts(w, now);
    jq_fetch_check_paused(w, now, PAUSE_CHECK_MS);
    jq_qhealth_tick(w, now);
    jq_sched_tick(w, now);
    jq_reclaim_tick(w, now);
    jq_trim_tick(w);
    jq_fetch_retry(w);
    jq_worker_maybe_exit(w);
}

static void on_heartbeat(uv_timer_t *t) { jq_heartbeat_send(t->data); }

/* Ready once the groups exist: this PING follows the XGROUP CREATEs on the
 * same connection, so its reply comes after theirs. A client that sees
 * "ready" (the master, a test) may then read the group at once. */
static void on_groups_ready(redisAsyncContext *ac, void *rp, void *priv) {
    jq_worker_t *w = priv;
    if (!rp || w->ready_sent || w->stopping) return; /* lost: the next on_fetch_up */
    w->ready_sent = 1;
    jq_worker_tell(w, "ready");
    jq_info("worker %s ready: queues %s, %lld cpu threads, %lld io slots",
            w->id, w->opt->queues_csv, w->opt->threads, w->opt->io_concurrency);
}

static void on_fetch_up(jq_rconn_t *c) {
    jq_worker_t *w = c->data;
    c->quiet_refusals = 0;
    jq_fetch_connected(w);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "PING");
    jq_rconn_args(&w->rfetch, &a, on_groups_ready, w);
    jq_args_destroy(&a);
    jq_fetch_kick(w);
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
        jq_reclaim_reconnected(w, jq_now_ms(), RECONNECT_RECLAIM_PAUSE_MS);
    }
    jq_sched_on_connect(w);
    jq_heartbeat_send(w);
    jq_finish_flush(w);
    if (reconnected) jq_reclaim_own(w);
}

/* ---- main ---- */

static int init(jq_worker_t *w, const jq_options_t *opt) {
    char err[JQ_ERR_LEN];
    w->opt = opt;
    w->started_ms = jq_now_ms();
    gethostname(w->host, sizeof(w->host) - 1);
    snprintf(w->id, sizeof(w->id), "%s:%d", w->host, (int)getpid());
    w->limits.max_payload = opt->max_payload;
    w->limits.timeout_ms = opt->timeout_ms;
    /* Read a little past the cpu threads so that a thread finishing a job
     * finds the next one already here, without a round trip. */
    jq_admit_init(&w->admit, opt->io_concurrency, 2 * opt->threads, opt->nqueues,
                  opt->queue_limit);
    jq_admit_set_read_ahead(&w->admit, opt->read_ahead);
    jq_runs_init(&w->runs, &w->admit);
    jq_reclaim_init(&w->reclaim);
    jq_fetch_init(&w->fetch);
    srand((unsigned)(getpid() ^ w->started_ms));

    int lrc = uv_loop_init(&w->loop);
    if (lrc != 0) {
        jq_error("worker init: event loop: %s", uv_strerror(lrc));
        return -1;
    }
    jq_registry_init(&w->reg);
    if (jq_handlers_setup(&w->reg, opt, err, sizeof(err)) != 0) {
        jq_error("handlers: %s", err);
        return -1;
    }
    if (jq_pool_init(&w->pool, &w->loop, (int)opt->threads, err, sizeof(err)) != 0) {
        jq_error("cpu pool: %s", err);
        return -1;
    }
    w->nqueues = opt->nqueues;
    for (int i = 0; i < opt->nqueues; i++) {
        w->queues[i].name = opt->queues[i];
        jq_key(w->queues[i].stream, sizeof(w->queues[i].stream), opt->prefix, opt->queues[i], "stream");
        /* Unknown until the first EXISTS answers (on_paused): a queue
         * paused before this worker started must not give it a job. */
        w->queues[i].paused = -1;
    }
    /* Every handle checked: a failure says which, and the worker exits
     * (status 3) before it takes any job; the master replaces it. */
    const char *what = "finish check";
    int rc;
    if ((rc = jq_finish_init(w)) != 0) goto uv_err;
    what = "timers";
    if ((rc = uv_timer_init(&w->loop, &w->tick)) != 0 ||
        (rc = uv_timer_init(&w->loop, &w->heartbeat)) != 0 ||
        (rc = uv_timer_init(&w->loop, &w->shutdown_timer)) != 0)
        goto uv_err;
    w->tick.data = w->heartbeat.data = w->shutdown_timer.data = w;
    if ((rc = uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS)) != 0 ||
        (rc = uv_timer_start(&w->heartbeat, on_heartbeat, (uint64_t)opt->heartbeat_ms,
                             (uint64_t)opt->heartbeat_ms)) != 0)
        goto uv_err;
    what = "signal handlers";
    uv_signal_t *sigs[] = {&w->sigterm, &w->sigint, &w->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if ((rc = uv_signal_init(&w->loop, sigs[i])) != 0) goto uv_err;
        sigs[i]->data = w;
        if ((rc = uv_signal_start(sigs[i], on_signal, nums[i])) != 0) goto uv_err;
    }
    signal(SIGPIPE, SIG_IGN);
    if (opt->worker_role[0]) {
        what = "the master's pipe";
        if ((rc = uv_pipe_init(&w->loop, &w->ctl, 0)) != 0) goto uv_err;
        if (uv_pipe_open(&w->ctl, 3) == 0) {
            w->has_ctl = 1;
            w->ctl.data = w;
            if ((rc = uv_read_start((uv_stream_t *)&w->ctl, on_ctl_alloc, on_ctl_read)) != 0)
                goto uv_err;
            /* Under a master only its SIGTERM counts: Ctrl-C or a hangup
             * in a terminal reaches the whole process group, and the
             * master, which gets it too, decides (drain, or a rolling
             * restart). Ignored, not handled, so that one arriving while
             * the handles close cannot kill the worker either. */
            uv_signal_stop(&w->sigint);
            uv_signal_stop(&w->sighup);
            signal(SIGINT, SIG_IGN);
            signal(SIGHUP, SIG_IGN);
        }
    }
    what = "redis connections";
    if (jq_rconn_init(&w->rfetch, &w->loop, &opt->url, "fetch") != 0 ||
        jq_rconn_init(&w->rwrite, &w->loop, &opt->url, "write") != 0) {
        rc = 0;
        goto uv_err;
    }
    w->rfetch.data = w->rwrite.data = w;
    /* Refused before it ever connected: the master, refused the same way,
     * says so once and stops us. After that, a refusal is an outage. */
    w->rfetch.quiet_refusals = w->rwrite.quiet_refusals = 1;
    w->rfetch.on_up = on_fetch_up;
    w->rwrite.on_up = on_write_up;
    return 0;
uv_err:
    jq_error("worker init: %s: %s", what, rc ? uv_strerror(rc) : "failed");
    return -1;
}

int jq_worker_main(const jq_options_t *opt) {
    jq_worker_t *w = calloc(1, sizeof(*w));
    if (!w) return 1;
    jq_log_set_role("worker");
    if (init(w, opt) != 0) {
        free(w);
        return 3;
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0) jq_warn("loop closed with handles left: %s", uv_strerror(rc));
    int code = w->exit_code;
    jq_finish_destroy(&w->finish);
    jq_trim_destroy(&w->trim);
    jq_reclaim_destroy(&w->reclaim);
    jq_fetch_destroy(&w->fetch);
    jq_runs_destroy(&w->runs);
    free(w);
    return code;
}
