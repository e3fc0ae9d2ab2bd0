/* The worker processes: spawned with a control pipe on their fd 3, their
 * lines read ("ready", "recycle <why>"), their exits seen; and
 * supervise.c's decisions carried out on them (signals, "stop", respawn
 * timers). See master.h for the protocol of the pipe. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "log.h"
#include "master_int.h"
#include "notify.h"

/* Entries of a dead worker were handed back: the live workers take them
 * now, not on their next reclaim tick. */
void jq_master_tell_reclaim(void *data) {
    jq_master_t *m = data;
    for (jq_supervised_t *w = m->sv.workers; w; w = w->next) {
        uv_buf_t b = uv_buf_init("reclaim\n", 8);
        /* A full pipe: the worker reclaims on its own tick instead. */
        if (w->ready && !w->draining) (void)uv_try_write((uv_stream_t *)&CHILD(w)->ctl, &b, 1);
    }
}

void jq_master_tell_switch(jq_master_t *m, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                           const jq_url_addr_t *now) {
    char line[256];
    int n = snprintf(line, sizeof(line), "switch-master %s %d %s %d %s %d\n", sentinel->host,
                     sentinel->port, old->host, old->port, now->host, now->port);
    /* Longer than the worker's read buffer (host names, not addresses):
     * the workers follow on READONLY or UNBLOCKED instead. */
    if (n <= 0 || (size_t)n >= sizeof(line)) return;
    for (jq_supervised_t *w = m->sv.workers; w; w = w->next) {
        uv_buf_t b = uv_buf_init(line, (unsigned)n);
        /* Every worker, a draining one too: its outcomes go to the new
         * master. A full pipe: it follows on the old master's errors. */
        if (!uv_is_closing((uv_handle_t *)&CHILD(w)->ctl))
            (void)uv_try_write((uv_stream_t *)&CHILD(w)->ctl, &b, 1);
    }
}

static void free_child(uv_handle_t *h) {
    jq_child_t *c = h->data;
    if (--c->closes == 0) free(c);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig) {
    jq_child_t *c = p->data;
    jq_master_t *m = c->m;
    int64_t now = jq_now_ms(), lived = now - c->sv.started_ms;
    int pid = c->sv.pid, slot = c->sv.slot;
    if (sig)
        jq_warn("worker %d (slot %d) killed by signal %d (%s) after %lld ms", pid, slot, sig,
                strsignal(sig), (long long)lived);
    else if (status)
        jq_warn("worker %d (slot %d) exited with status %lld after %lld ms", pid, slot,
                (long long)status, (long long)lived);
    else
        jq_info("worker %d (slot %d) exited", pid, slot);
    jq_handback_add(&m->handback, pid, !sig && !status);
    jq_handback_pass(&m->handback);
    jq_supervise_exited(&m->sv, &c->sv, !sig && !status, now);
    c->closes = 2;
    uv_close((uv_handle_t *)&c->proc, free_child);
    uv_close((uv_handle_t *)&c->ctl, free_child);
    jq_master_finish(m);
}

static void on_child_line(jq_child_t *c, const char *line) {
    jq_master_t *m = c->m;
    if (strcmp(line, "ready") == 0) {
        jq_supervise_ready(&m->sv, &c->sv);
    } else if (strncmp(line, "recycle", 7) == 0) {
        jq_info("worker %d asks to be recycled (%s)", c->sv.pid, line[7] ? line + 8 : "");
        jq_supervise_recycle(&m->sv, &c->sv);
    }
}

static void on_ctl_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    jq_child_t *c = h->data;
    *b = uv_buf_init(c->line + c->linelen, (unsigned)(sizeof(c->line) - 1 - c->linelen));
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    jq_child_t *c = s->data;
    if (n < 0) {
        /* The worker closed its end (it exits): on_child_exit follows. */
        (void)uv_read_stop(s);
        return;
    }
    c->linelen += (size_t)n;
    c->line[c->linelen] = '\0';
    char *nl;
    while ((nl = strchr(c->line, '\n'))) {
        *nl = '\0';
        on_child_line(c, c->line);
        size_t rest = c->linelen - (size_t)(nl + 1 - c->line);
        memmove(c->line, nl + 1, rest);
        c->linelen = rest;
        c->line[rest] = '\0';
    }
    if (c->linelen == sizeof(c->line) - 1) c->linelen = 0; /* no newline: drop */
}

/* The worker's command line: the master's own, with the worker role. */
static char **worker_args(jq_master_t *m) {
    char **args = calloc((size_t)m->argc + 2, sizeof(char *));
    if (!args) return NULL;
    args[0] = m->exe;
    for (int i = 1; i < m->argc; i++) args[i] = m->argv[i];
    args[m->argc] = "--worker-role=worker";
    return args;
}

/* Starts c's process with its control pipe on fd 3; 0 or a libuv error. */
static int start_process(jq_master_t *m, jq_child_t *c, char **args) {
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&c->ctl;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    po.file = m->exe;
    po.args = args;
    po.exit_cb = on_child_exit;
    po.stdio = stdio;
    po.stdio_count = 4;
    /* Its own session: a Ctrl-C in the terminal reaches the master only,
     * which then drains the workers in order instead of all of them
     * getting the signal twice. A worker whose master dies sees its fd 3
     * close and drains itself. */
    po.flags = UV_PROCESS_DETACHED;
    c->proc.data = c;
    return uv_spawn(m->loop, &c->proc, &po);
}

/* supervise.c's spawn: a worker in slot, or a retry later. */
void jq_master_spawn(void *data, int slot) {
    jq_master_t *m = data;
    jq_child_t *c = calloc(1, sizeof(*c));
    char **args = worker_args(m);
    int rc = c && args ? uv_pipe_init(m->loop, &c->ctl, 0) : UV_ENOMEM;
    if (rc != 0) {
        jq_error("cannot spawn a worker: %s", c && args ? "its control pipe" : "out of memory");
        free(c);
        free(args);
        jq_supervise_spawn_failed(&m->sv, slot);
        return;
    }
    c->m = m;
    c->sv.data = c;
    c->ctl.data = c;
    rc = start_process(m, c, args);
    free(args);
    if (rc != 0) {
        jq_error("cannot spawn a worker: %s", uv_strerror(rc));
        c->closes = 2;
        uv_close((uv_handle_t *)&c->ctl, free_child);
        uv_close((uv_handle_t *)&c->proc, free_child);
        jq_supervise_spawn_failed(&m->sv, slot);
        return;
    }
    jq_supervise_started(&m->sv, &c->sv, slot, c->proc.pid, jq_now_ms());
    /* Without its pipe the worker still runs and exits as usual; only its
     * "ready" and "recycle" lines are lost, so a rolling restart waits. */
    if ((rc = uv_read_start((uv_stream_t *)&c->ctl, on_ctl_alloc, on_ctl_read)) != 0)
        jq_error("worker %d: cannot read its control pipe: %s", c->sv.pid, uv_strerror(rc));
    jq_info("worker %d started (slot %d)", c->sv.pid, slot);
}

/* ---- carrying out supervise.c's other decisions ---- */

static void on_respawn(uv_timer_t *t) {
    jq_master_t *m = t->data;
    jq_supervise_respawn_due(&m->sv, (int)(t - m->respawn));
}

static void respawn_at(void *data, int slot, int64_t delay_ms) {
    jq_master_t *m = data;
    int rc = uv_timer_start(&m->respawn[slot], on_respawn, (uint64_t)delay_ms, 0);
    if (rc != 0) jq_error("slot %d: cannot schedule a respawn: %s", slot, uv_strerror(rc));
}

static void kill_worker(jq_supervised_t *w, int sig) {
    int rc = uv_process_kill(&CHILD(w)->proc, sig);
    /* ESRCH: it exited already, and its exit callback is on its way. */
    if (rc != 0 && rc != UV_ESRCH)
        jq_error("worker %d: cannot send signal %d: %s", w->pid, sig, uv_strerror(rc));
}

static void drain_worker(void *data, jq_supervised_t *w) { kill_worker(w, SIGTERM); }
static void kill_now(void *data, jq_supervised_t *w) { kill_worker(w, SIGKILL); }

/* On the pipe: a worker draining on its own (recycling) never got a first
 * SIGTERM, so a SIGTERM now would only drain it. */
static void stop_worker(void *data, jq_supervised_t *w) {
    uv_buf_t b = uv_buf_init("stop\n", 5);
    if (uv_try_write((uv_stream_t *)&CHILD(w)->ctl, &b, 1) != 5) kill_worker(w, SIGTERM);
}

/* Every slot serves: systemd (Type=notify) hears that the service is up. */
static void all_ready(void *data) {
    jq_master_t *m = data;
    char status[128];
    snprintf(status, sizeof(status), "all %lld workers serving", m->opt->workers);
    jq_info("%s", status);
    jq_notify_ready(status);
}

const jq_supervise_ops_t jq_master_ops = {jq_master_spawn, respawn_at, drain_worker, stop_worker,
                                          kill_now,        all_ready,  NULL};
