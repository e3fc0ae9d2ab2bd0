/* The supervising master. See master.h for what it guarantees. */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dashsrv.h"
#include "httpd.h"
#include "job.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "notify.h"
#include "rconn.h"
#include "reap.h"

#define RESPAWN_MIN_MS 100
#define RESPAWN_MAX_MS 30000
#define STABLE_MS 5000     /* a worker that lived this long was not crash-looping */
#define KILL_MARGIN_MS 5000
#define JANITOR_MS 1000
#define SWEEP_EVERY_MS 60000
#define ORPHAN_IDLE_MS 600000
#define DEAD_MAX 256
#define PONG_STALE_MS (3 * JANITOR_MS + 500) /* Redis silent this long: unhealthy */

typedef struct jq_master jq_master_t;

/* A dead worker's consumer, until it holds nothing and left the group. */
typedef struct jq_gone {
    int used;
    char name[320];     /* <host>:<pid> */
    int replies;        /* handback scripts in flight */
    long long held;     /* entries still held, summed over queues this pass */
    int passes;
    uint64_t uncount;   /* queues (bits) whose deliveries are still to uncount */
} jq_gone_t;

/* The handback of one dead worker in one queue (priv of its reply). */
typedef struct jq_handback {
    jq_master_t *m;
    jq_gone_t *g;
    int q;
} jq_handback_t;

typedef struct jq_child {
    uv_process_t proc;
    uv_pipe_t ctl;
    jq_master_t *m;
    int slot;
    int pid;
    int ready;
    int draining;       /* told to drain, or drains on its own */
    int replaced;       /* a replacement was spawned for it */
    int64_t started_ms;
    int closes;         /* handles still to close before free */
    char line[256];
    size_t linelen;
    struct jq_child *next;
} jq_child_t;

struct jq_master {
    uv_loop_t *loop;
    const jq_options_t *opt;
    int argc;
    char **argv;
    char exe[4096];
    char host[256];
    jq_child_t *children;
    int *streak;        /* per slot: quick deaths in a row */
    uv_timer_t *respawn; /* per slot */
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_t sigchld;  /* started only as PID 1 (a container): orphans to reap */
    uv_timer_t kill_timer, janitor;
    int64_t last_sweep_ms;
    int64_t last_pong_ms;   /* Redis answered a PING (healthz) */
    jq_rconn_t redis;
    jq_httpd_t *http;       /* --metrics-addr: /healthz, /metrics, dashboard */
    jq_metrics_t *metrics;
    long long starts, crashes, recycles; /* for /metrics */
    jq_dashsrv_t *dash;     /* the dashboard on http, unless --dashboard=0 */
    int shutting_down;
    int exit_code;
    int signals;
    int roll_next;      /* next slot of a rolling restart, -1 when none */
    int announced;      /* READY=1 sent to systemd since the last (re)start */
    jq_gone_t gone[DEAD_MAX]; /* dead workers' consumers still in the group */
};

static void spawn(jq_master_t *m, int slot);
static void on_respawn(uv_timer_t *t);

/* Workers serving the slot for good: neither draining nor waiting for
 * their replacement to be ready. None means the slot needs a new worker. */
static int serving_in_slot(jq_master_t *m, int slot) {
    int n = 0;
    for (jq_child_t *c = m->children; c; c = c->next)
        if (c->slot == slot && !c->draining && !c->replaced) n++;
    return n;
}

static int nchildren(jq_master_t *m) {
    int n = 0;
    for (jq_child_t *c = m->children; c; c = c->next) n++;
    return n;
}

/* ---- handing back a dead worker's entries ---- */

/* For one queue and one dead consumer, atomically: its pending ids are
 * re-stamped as long idle, so the next reclaim of any live worker takes them
 * (and counts the delivery, which catches poison jobs); once it holds
 * nothing, it leaves the group (DELCONSUMER earlier would drop its entries,
 * and they would never run). XCLAIM keeps the entries owned by the dead
 * consumer until a live one claims them, so nothing is ever unowned, and
 * JUSTID keeps their delivery count as it is. Being one script, it cannot
 * take back an entry a live worker claimed meanwhile. Returns how many
 * entries the consumer still holds (0: it was deleted).
 * ARGV[4] = 1 for a worker that exited cleanly (a forced stop, a read in
 * flight): what it left was not a crash, so each entry's delivery is
 * uncounted, and a job on its last attempt runs instead of dying "worker
 * lost". Done once per dead worker and queue. The XCLAIMs take 1,000
 * ids each: a command in a script takes at most about 8,000 arguments
 * (Lua's unpack), and one XCLAIM of all 10,000 failed the whole script
 * (the jobs then waited out the visibility timeout). */
static const char handback_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 10000, ARGV[2])\n"
    "if #p == 0 then\n"
    "  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n"
    "  return 0\n"
    "end\n"
    "if ARGV[4] == '1' then\n"
    "  for _, e in ipairs(p) do\n"
    "    local n = e[4] > 0 and e[4] - 1 or 0\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, e[1], 'IDLE', ARGV[3],\n"
    "               'RETRYCOUNT', n, 'JUSTID')\n"
    "  end\n"
    "  return #p\n"
    "end\n"
    "for s = 1, #p, 1000 do\n"
    "  local args = {KEYS[1], ARGV[1], ARGV[2], 0}\n"
    "  for j = s, math.min(s + 999, #p) do args[#args + 1] = p[j][1] end\n"
    "  args[#args + 1] = 'IDLE'\n"
    "  args[#args + 1] = ARGV[3]\n"
    "  args[#args + 1] = 'JUSTID'\n"
    "  redis.call('XCLAIM', unpack(args))\n"
    "end\n"
    "return #p\n";

/* The stamp: far past any visibility timeout. reclaim.c takes entries idle
 * past visibility * 100 even when its worker is full: keep the two in step. */
static long long handback_idle(const jq_options_t *o) { return o->visibility_ms * 100 + 3600000LL; }

static void on_handback(redisAsyncContext *ac, void *rp, void *priv) {
    (void)ac;
    jq_handback_t *hb = priv;
    jq_gone_t *g = hb->g;
    jq_master_t *m = hb->m;
    redisReply *r = rp;
    if (r && r->type == REDIS_REPLY_INTEGER) g->uncount &= ~(1ULL << hb->q);
    free(hb);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer > 0 && g->passes == 1)
            jq_info("handed back %lld pending jobs of dead worker %s", r->integer, g->name);
        /* Tell the live workers to reclaim now rather than on their next
         * reclaim tick (up to 200 ms away): recovery in milliseconds. */
        if (r->integer > 0)
            for (jq_child_t *c = m->children; c; c = c->next) {
                uv_buf_t b = uv_buf_init("reclaim\n", 8);
                if (c->ready && !c->draining) uv_try_write((uv_stream_t *)&c->ctl, &b, 1);
            }
        g->held += r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0) {
        /* No such queue or group: nothing held there. */
    } else {
        if (r && r->type == REDIS_REPLY_ERROR) jq_error("handing back jobs: %s", r->str);
        g->held++; /* unknown: try again next pass */
    }
    if (--g->replies == 0 && g->held == 0) g->used = 0; /* gone from every queue */
}

/* One pass over the dead workers' consumers: hand back what they hold,
 * delete the empty ones. Run at each death and every JANITOR_MS, so a pass
 * lost to a Redis outage, or entries of a paused queue, are seen to later. */
static void handback_all(jq_master_t *m) {
    if (!m->redis.up) return;
    char vis[24];
    snprintf(vis, sizeof(vis), "%lld", handback_idle(m->opt));
    for (int d = 0; d < DEAD_MAX; d++) {
        jq_gone_t *g = &m->gone[d];
        if (!g->used || g->replies > 0) continue;
        g->held = 0;
        g->passes++;
        for (int q = 0; q < m->opt->nqueues; q++) {
            char key[JQ_KEY_MAX];
            jq_key(key, sizeof(key), m->opt->prefix, m->opt->queues[q], "stream");
            jq_handback_t *hb = malloc(sizeof(*hb));
            if (hb) {
                hb->m = m;
                hb->g = g;
                hb->q = q;
            }
            jq_args_t a;
            jq_args_init(&a);
            jq_args_str(&a, "EVAL");
            jq_args_str(&a, handback_lua);
            jq_args_str(&a, "1");
            jq_args_str(&a, key);
            jq_args_str(&a, JQ_GROUP);
            jq_args_str(&a, g->name);
            jq_args_str(&a, vis);
            jq_args_str(&a, (g->uncount >> q) & 1 ? "1" : "0");
            if (hb && jq_rconn_args(&m->redis, &a, on_handback, hb) == 0) {
                g->replies++;
            } else {
                free(hb);
                g->held++;
            }
            jq_args_destroy(&a);
        }
    }
}

static void add_gone(jq_master_t *m, int pid, int clean) {
    for (int d = 0; d < DEAD_MAX; d++) {
        jq_gone_t *g = &m->gone[d];
        if (g->used) continue;
        memset(g, 0, sizeof(*g));
        g->used = 1;
        if (clean) g->uncount = m->opt->nqueues >= 64 ? ~0ULL : (1ULL << m->opt->nqueues) - 1;
        snprintf(g->name, sizeof(g->name), "%s:%d", m->host, pid);
        return;
    }
    /* Full: its entries still go to a live worker after the visibility
     * timeout; only the fast path is lost. */
    jq_warn("too many dead workers to hand back at once; worker %d's jobs wait for the visibility timeout",
            pid);
}

/* Consumers whose workers died with their master (a container gone) are
 * never handed back by anyone: their entries are reclaimed after the
 * visibility timeout, and the consumer itself is swept here once it holds
 * nothing and has not read for ORPHAN_IDLE_MS. Deleting an empty consumer
 * loses nothing: a live one that merely idled is recreated by its next
 * read. */
static const char sweep_lua[] =
    "local n = 0\n"
    "for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) then\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

static void on_swept(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *r = rp;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        jq_info("removed %lld idle empty consumers from the group", r->integer);
}

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
    handback_all(m);
    int64_t now = jq_now_ms();
    if (!m->redis.up || now - m->last_sweep_ms < SWEEP_EVERY_MS) return;
    m->last_sweep_ms = now;
    for (int q = 0; q < m->opt->nqueues; q++) {
        char key[JQ_KEY_MAX];
        jq_key(key, sizeof(key), m->opt->prefix, m->opt->queues[q], "stream");
        jq_args_init(&a);
        jq_args_str(&a, "EVAL");
        jq_args_str(&a, sweep_lua);
        jq_args_str(&a, "1");
        jq_args_str(&a, key);
        jq_args_str(&a, JQ_GROUP);
        jq_args_ll(&a, ORPHAN_IDLE_MS);
        jq_rconn_args(&m->redis, &a, on_swept, NULL);
        jq_args_destroy(&a);
    }
}

/* ---- children ---- */

static void free_child(uv_handle_t *h) {
    jq_child_t *c = h->data;
    if (--c->closes == 0) free(c);
}

static void unlink_child(jq_master_t *m, jq_child_t *c) {
    for (jq_child_t **pp = &m->children; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

static void maybe_finish(jq_master_t *m) {
    if (!m->shutting_down || m->children) return;
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
    handback_all(m);
    jq_rconn_close(&m->redis, 1, NULL);
}

static void roll_step(jq_master_t *m);

static void on_child_exit(uv_process_t *p, int64_t status, int sig) {
    jq_child_t *c = p->data;
    jq_master_t *m = c->m;
    int64_t lived = jq_now_ms() - c->started_ms;
    if (sig)
        jq_warn("worker %d (slot %d) killed by signal %d (%s) after %lld ms", c->pid, c->slot, sig,
                strsignal(sig), (long long)lived);
    else if (status)
        jq_warn("worker %d (slot %d) exited with status %lld after %lld ms", c->pid, c->slot,
                (long long)status, (long long)lived);
    else
        jq_info("worker %d (slot %d) exited", c->pid, c->slot);

    if (sig || status) m->crashes++;
    add_gone(m, c->pid, !sig && !status);
    handback_all(m);
    unlink_child(m, c);
    int slot = c->slot;
    int clean = (!sig && !status);
    c->closes = 2;
    uv_close((uv_handle_t *)&c->proc, free_child);
    uv_close((uv_handle_t *)&c->ctl, free_child);

    if (m->shutting_down) {
        maybe_finish(m);
        return;
    }
    /* Its replacement runs (or it was one, and the worker it replaces
     * still serves: then a new replacement is due, with the backoff). */
    if (serving_in_slot(m, slot) > 0) return;
    if (clean || lived >= STABLE_MS) m->streak[slot] = 0;
    else m->streak[slot]++;
    int64_t delay = 0;
    if (m->streak[slot] > 0) {
        delay = RESPAWN_MIN_MS << (m->streak[slot] > 12 ? 12 : m->streak[slot] - 1);
        if (delay > RESPAWN_MAX_MS) delay = RESPAWN_MAX_MS;
        jq_warn("slot %d: worker died %d times in a row; respawning in %lld ms", slot,
                m->streak[slot], (long long)delay);
    }
    int rc = uv_timer_start(&m->respawn[slot], on_respawn, (uint64_t)delay, 0);
    if (rc != 0) jq_error("slot %d: cannot schedule a respawn: %s", slot, uv_strerror(rc));
}

static void on_respawn(uv_timer_t *t) {
    jq_master_t *m = t->data;
    int slot = (int)(t - m->respawn);
    if (!m->shutting_down && serving_in_slot(m, slot) == 0) spawn(m, slot);
}

static void tell_drain(jq_child_t *c) {
    if (c->draining) return;
    c->draining = 1;
    uv_process_kill(&c->proc, SIGTERM);
}

/* Once every slot has a worker serving, and no rolling restart is under
 * way, tells systemd (Type=notify) the service is up: at start, and again
 * after a SIGHUP. */
static void announce_if_ready(jq_master_t *m) {
    if (m->announced || m->shutting_down || m->roll_next >= 0) return;
    for (int slot = 0; slot < m->opt->workers; slot++) {
        jq_child_t *c = m->children;
        while (c && !(c->slot == slot && c->ready && !c->draining)) c = c->next;
        if (!c) return;
    }
    m->announced = 1;
    char status[128];
    snprintf(status, sizeof(status), "all %lld workers serving", m->opt->workers);
    jq_info("%s", status);
    jq_notify_ready(status);
}

static void on_child_line(jq_child_t *c, const char *line) {
    jq_master_t *m = c->m;
    if (strcmp(line, "ready") == 0) {
        c->ready = 1;
        /* A replacement is serving: now the workers it replaces may go. */
        for (jq_child_t *o = m->children; o; o = o->next)
            if (o != c && o->slot == c->slot && o->replaced) tell_drain(o);
        if (m->roll_next >= 0) roll_step(m);
        announce_if_ready(m);
    } else if (strncmp(line, "recycle", 7) == 0) {
        jq_info("worker %d asks to be recycled (%s)", c->pid, line[7] ? line + 8 : "");
        m->recycles++;
        c->draining = 1;
        if (!c->replaced && !m->shutting_down) {
            c->replaced = 1;
            spawn(m, c->slot);
        }
    }
}

static void on_ctl_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
    jq_child_t *c = h->data;
    *b = uv_buf_init(c->line + c->linelen, (unsigned)(sizeof(c->line) - 1 - c->linelen));
}

static void on_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    jq_child_t *c = s->data;
    if (n < 0) {
        uv_read_stop(s);
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

/* A spawn that failed is tried again later, with the crash backoff. */
static void respawn_later(jq_master_t *m, int slot) {
    m->streak[slot]++;
    int rc = uv_timer_start(&m->respawn[slot], on_respawn, 1000, 0);
    if (rc != 0) jq_error("slot %d: cannot schedule a respawn: %s", slot, uv_strerror(rc));
}

static void spawn(jq_master_t *m, int slot) {
    jq_child_t *c = calloc(1, sizeof(*c));
    char **args = calloc((size_t)m->argc + 2, sizeof(char *));
    int rc;
    if (!c || !args) {
        jq_error("cannot spawn a worker: out of memory");
        free(c);
        free(args);
        respawn_later(m, slot);
        return;
    }
    c->m = m;
    c->slot = slot;
    if ((rc = uv_pipe_init(m->loop, &c->ctl, 0)) != 0) {
        jq_error("cannot spawn a worker: its control pipe: %s", uv_strerror(rc));
        free(c);
        free(args);
        respawn_later(m, slot);
        return;
    }
    c->ctl.data = c;
    args[0] = m->exe;
    for (int i = 1; i < m->argc; i++) args[i] = m->argv[i];
    args[m->argc] = "--worker-role=worker";
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
    rc = uv_spawn(m->loop, &c->proc, &po);
    free(args);
    if (rc != 0) {
        jq_error("cannot spawn a worker: %s", uv_strerror(rc));
        c->closes = 2;
        uv_close((uv_handle_t *)&c->ctl, free_child);
        uv_close((uv_handle_t *)&c->proc, free_child);
        respawn_later(m, slot);
        return;
    }
    c->pid = c->proc.pid;
    m->starts++;
    c->started_ms = jq_now_ms();
    c->next = m->children;
    m->children = c;
    /* Without its pipe the worker still runs and exits as usual; only its
     * "ready" and "recycle" lines are lost, so a rolling restart waits. */
    if ((rc = uv_read_start((uv_stream_t *)&c->ctl, on_ctl_alloc, on_ctl_read)) != 0)
        jq_error("worker %d: cannot read its control pipe: %s", c->pid, uv_strerror(rc));
    jq_info("worker %d started (slot %d)", c->pid, slot);
}

/* ---- signals ---- */

static void roll_step(jq_master_t *m) {
    /* Wait until the previous slot's replacement is serving. */
    for (jq_child_t *c = m->children; c; c = c->next)
        if (!c->ready && !c->draining) return;
    if (m->roll_next >= m->opt->workers) {
        m->roll_next = -1;
        jq_info("rolling restart done");
        return;
    }
    int slot = m->roll_next++;
    for (jq_child_t *c = m->children; c; c = c->next)
        if (c->slot == slot && !c->draining) c->replaced = 1;
    spawn(m, slot);
}

static void on_kill_timeout(uv_timer_t *t) {
    jq_master_t *m = t->data;
    for (jq_child_t *c = m->children; c; c = c->next) {
        jq_warn("worker %d did not stop in time; killing it", c->pid);
        uv_process_kill(&c->proc, SIGKILL);
    }
}

static void on_signal(uv_signal_t *s, int signum) {
    jq_master_t *m = s->data;
    if (signum == SIGHUP) {
        if (m->shutting_down) return;
        if (m->roll_next >= 0) {
            jq_info("SIGHUP: a rolling restart is already under way");
            return;
        }
        jq_info("SIGHUP: rolling restart of %lld workers", m->opt->workers);
        m->roll_next = 0;
        m->announced = 0;
        jq_notify_reloading("rolling restart");
        roll_step(m);
        return;
    }
    m->signals++;
    if (m->signals == 1) {
        m->shutting_down = 1;
        m->roll_next = -1; /* a rolling restart spawns no more */
        jq_notify_stopping("draining");
        jq_info("%s: draining %d workers (up to %lld ms)", strsignal(signum), nchildren(m),
                m->opt->shutdown_timeout_ms);
        /* Workers already draining (recycled, or rolled) were told, or
         * drain on their own: one more SIGTERM would be their second, the
         * one that stops them at once. */
        for (jq_child_t *c = m->children; c; c = c->next) tell_drain(c);
        int rc = uv_timer_start(&m->kill_timer, on_kill_timeout,
                                (uint64_t)(m->opt->shutdown_timeout_ms + KILL_MARGIN_MS), 0);
        if (rc != 0) jq_error("cannot arm the shutdown kill timer: %s", uv_strerror(rc));
        maybe_finish(m);
    } else {
        jq_info("second signal: stopping workers now");
        /* On the pipe: a worker draining on its own (recycling) never got
         * a first SIGTERM, so a SIGTERM now would only drain it. */
        for (jq_child_t *c = m->children; c; c = c->next) {
            uv_buf_t b = uv_buf_init("stop\n", 5);
            if (uv_try_write((uv_stream_t *)&c->ctl, &b, 1) != 5)
                uv_process_kill(&c->proc, SIGTERM);
        }
    }
}

/* As PID 1, every orphan of the container becomes our child: reap those
 * that exited, leaving the workers to libuv. */
static void on_sigchld(uv_signal_t *s, int signum) {
    jq_master_t *m = s->data;
    int n = nchildren(m), i = 0;
    int *keep = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!keep) return;
    for (jq_child_t *c = m->children; c; c = c->next) keep[i++] = c->pid;
    jq_reap_orphans(keep, n);
    free(keep);
}

/* ---- HTTP: /healthz (and the routes of other modules) ---- */

/* Worker slots with a worker that said ready and is not draining. */
static int slots_serving(jq_master_t *m) {
    int n = 0;
    for (int slot = 0; slot < m->opt->workers; slot++) {
        int ok = 0;
        for (jq_child_t *c = m->children; c && !ok; c = c->next)
            ok = c->slot == slot && c->ready && !c->draining;
        n += ok;
    }
    return n;
}

static void local_metrics(jq_metrics_local_t *out, void *data) {
    jq_master_t *m = data;
    out->workers_configured = m->opt->workers;
    out->workers_serving = slots_serving(m);
    out->worker_starts = m->starts;
    out->worker_crashes = m->crashes;
    out->worker_recycles = m->recycles;
    out->redis_up = m->redis.up;
}

/* Healthy: Redis answers, and every worker slot has a worker that said
 * ready and is not draining. Otherwise 0 with the reason. */
static int master_healthy(jq_master_t *m, char *why, size_t len) {
    if (m->shutting_down) return snprintf(why, len, "shutting down"), 0;
    if (!m->redis.up) return snprintf(why, len, "redis unreachable"), 0;
    int64_t silent = jq_now_ms() - m->last_pong_ms;
    if (silent > PONG_STALE_MS)
        return snprintf(why, len, "redis has not answered for %lld ms", (long long)silent), 0;
    int missing = (int)(m->opt->workers - slots_serving(m));
    if (missing)
        return snprintf(why, len, "%d of %lld workers not serving", missing, m->opt->workers), 0;
    return snprintf(why, len, "ok: redis up, %lld workers serving", m->opt->workers), 1;
}

static void on_healthz(jq_http_req_t *req, void *data) {
    char why[128];
    int ok = master_healthy(data, why, sizeof(why) - 1);
    strcat(why, "\n");
    jq_httpd_respond_text(req, ok ? 200 : 503, why);
}

/* The web dashboard at / of the HTTP server (dashsrv.h). Its token is
 * never logged: only whether there is one. */
static int start_dashboard(jq_master_t *m) {
    const jq_options_t *o = m->opt;
    if (!o->dashboard) return 0;
    char err[256];
    m->dash = jq_dashsrv_new(m->loop, m->http, o->redis, o->prefix, o->admin_token,
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
    handback_all(m);
}

static void on_redis_refused(jq_rconn_t *c, const char *step, const char *why) {
    jq_master_t *m = c->data;
    char url[512];
    jq_url_format(c->url, url, sizeof(url));
    jq_error("redis at %s refused our %s: %s; check the user, password and database "
             "in --redis / JOBQ_REDIS_URL; exiting", url, step, why);
    m->exit_code = JQ_MASTER_EXIT_CONFIG;
    m->shutting_down = 1;
    m->roll_next = -1;
    /* The workers, started meanwhile, were refused as well (they retry
     * quietly, leaving the message to us): they hold no job. */
    for (jq_child_t *k = m->children; k; k = k->next) tell_drain(k);
    maybe_finish(m);
}

/* Every handle the master needs before its loop runs; on failure says
 * which and leaves the ones made so far to the loop (the caller exits). */
static int master_init(jq_master_t *m, const jq_options_t *opt) {
    int rc;
    m->streak = calloc((size_t)opt->workers, sizeof(int));
    m->respawn = calloc((size_t)opt->workers, sizeof(uv_timer_t));
    if (!m->streak || !m->respawn) {
        jq_error("out of memory for %lld worker slots", opt->workers);
        return -1;
    }
    for (int i = 0; i < opt->workers; i++) {
        if ((rc = uv_timer_init(m->loop, &m->respawn[i])) != 0) goto uv_err;
        m->respawn[i].data = m;
    }
    uv_signal_t *sigs[] = {&m->sigterm, &m->sigint, &m->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if ((rc = uv_signal_init(m->loop, sigs[i])) != 0) goto uv_err;
        sigs[i]->data = m;
        if ((rc = uv_signal_start(sigs[i], on_signal, nums[i])) != 0) goto uv_err;
    }
    if (getpid() == 1) {
        if ((rc = uv_signal_init(m->loop, &m->sigchld)) != 0) goto uv_err;
        m->sigchld.data = m;
        if ((rc = uv_signal_start(&m->sigchld, on_sigchld, SIGCHLD)) != 0) goto uv_err;
    }
    if ((rc = uv_timer_init(m->loop, &m->kill_timer)) != 0) goto uv_err;
    m->kill_timer.data = m;
    if ((rc = uv_timer_init(m->loop, &m->janitor)) != 0) goto uv_err;
    m->janitor.data = m;
    if ((rc = uv_timer_start(&m->janitor, on_janitor, JANITOR_MS, JANITOR_MS)) != 0) goto uv_err;
    if (jq_rconn_init(&m->redis, m->loop, &opt->url, "master") != 0) {
        jq_error("cannot start the redis connection");
        return -1;
    }
    m->redis.data = m;
    m->redis.on_up = on_redis_up;
    m->redis.on_refused = on_redis_refused;
    return 0;
uv_err:
    jq_error("master init: %s", uv_strerror(rc));
    return -1;
}

int jq_master_main(const jq_options_t *opt, int argc, char **argv) {
    static jq_master_t mm;
    jq_master_t *m = &mm;
    m->loop = uv_default_loop();
    m->opt = opt;
    m->argc = argc;
    m->argv = argv;
    m->roll_next = -1;
    gethostname(m->host, sizeof(m->host) - 1);
    size_t sz = sizeof(m->exe);
    if (uv_exepath(m->exe, &sz) != 0) snprintf(m->exe, sizeof(m->exe), "%s", argv[0]);
    char url[512];
    jq_url_format(&opt->url, url, sizeof(url));
    jq_info("jobq-consumer master pid %d: %lld workers x %lld cpu threads (%d usable cpus), queues %s, redis %s",
            (int)getpid(), opt->workers, opt->threads, opt->cpus, opt->queues_csv, url);
    jq_opts_log(jq_options_table, opt);
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
    for (int i = 0; i < opt->workers; i++) spawn(m, i);
    uv_run(m->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(m->loop);
    if (rc != 0) jq_warn("master loop closed with handles left: %s", uv_strerror(rc));
    free(m->streak);
    free(m->respawn);
    return m->exit_code;
}
