/* One handler process (procproc.h): spawned under the exec guard on the
 * worker's loop, fed job frames on its stdin, read as frames on its stdout,
 * and killed when it breaks the protocol, hangs or dies. It is freed when
 * its last handle (the process, stdin, stdout) is closed. */

#include "procproc.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "procwire.h"

#define HELLO_MS 10000       /* a process must say hello within this */
#define CANCEL_GRACE_MS 1000 /* a cancelled job must be answered within this */
#define RETIRE_GRACE_MS 2000 /* a recycled process must exit within this */
#define SEQ_BITS 16          /* a seq's low bits are its slot */
#define READ_CHUNK 65536

/* ---- handles ---- */

static void on_closed(uv_handle_t *h) {
    jq_procproc_t *p = h->data;
    if (--p->open_handles > 0) return;
    if (p->prev)
        p->prev->next = p->next;
    else
        jq_pp.live = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p->rbuf);
    free(p->slots);
    msgpack_sbuffer_destroy(&p->wq);
    msgpack_sbuffer_destroy(&p->wfly);
    free(p);
}

static void close_one(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, on_closed);
}

static const char *name_of(const jq_procproc_t *p) { return p->pool->cmd.name; }

/* ---- death ---- */

/* Fails every job p holds with why (retried while attempts are left). */
static void fail_held(jq_procproc_t *p, const char *why) {
    for (int i = 0; i < p->max_inflight; i++) {
        jq_procpool_ticket_t *tk = p->slots[i];
        if (tk == NULL) continue;
        p->slots[i] = NULL;
        jq_task_t *t = tk->t;
        free(tk);
        if (t == NULL) continue;
        t->hstate = NULL;
        jq_task_fail(t, "%s: handler process %s", t->handler->name, why);
        jq_task_done(t);
    }
    p->inflight = p->cancelled = 0;
}

/* p leaves its slot: another is started, now or after the backoff. */
static void detach(jq_procproc_t *p, int failed) {
    if (p->slot < 0) return;
    int slot = p->slot;
    p->slot = -1;
    jq_procpool_vacate(p->pool, slot, failed);
}

void jq_procproc_kill(jq_procproc_t *p, const char *why) {
    if (p->state == JQ_PROCPROC_DYING) return;
    int said_hello = p->state != JQ_PROCPROC_STARTING;
    p->state = JQ_PROCPROC_DYING;
    if (why) jq_warn("--proc %s: handler process (pid %d) %s: killed", name_of(p), p->ph.pid, why);
    detach(p, 1);
    fail_held(p, why ? why : "stopped with the worker");
    if (!p->exited) {
        /* The guard kills the command's whole tree. */
        int rc = uv_process_kill(&p->ph, SIGTERM);
        if (rc != 0 && rc != UV_ESRCH)
            jq_warn("--proc %s: cannot signal the guard (pid %d): %s", name_of(p), p->ph.pid,
                    uv_strerror(rc));
    }
    close_one((uv_handle_t *)&p->in);
    close_one((uv_handle_t *)&p->out);
    if (p->exited) close_one((uv_handle_t *)&p->ph);
    /* Nothing may ever serve the waiting jobs: let them fail (and retry
     * with their backoff) rather than wait for their timeout. */
    if (why && !said_hello && !jq_pp.stopping && !jq_procpool_up(p->pool)) {
        char buf[300];
        snprintf(buf, sizeof buf, "handler process %s, before its hello", why);
        jq_procpool_fail_waiting(p->pool, buf);
    }
}

static void killf(jq_procproc_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void killf(jq_procproc_t *p, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    jq_procproc_kill(p, why);
}

/* The process exited and its stdout is at its end. */
static void gone(jq_procproc_t *p) {
    if (p->state == JQ_PROCPROC_DYING) return;
    if (p->state == JQ_PROCPROC_RETIRING && p->inflight == 0) {
        p->state = JQ_PROCPROC_DYING;
        jq_info("--proc %s (pid %d): recycled", name_of(p), p->ph.pid);
        close_one((uv_handle_t *)&p->in);
        close_one((uv_handle_t *)&p->out);
        close_one((uv_handle_t *)&p->ph);
        return;
    }
    if (p->term_signal)
        killf(p, "was killed by signal %d (%s)", p->term_signal, strsignal(p->term_signal));
    else
        killf(p, "exited with status %lld", (long long)p->status);
}

static void on_exit_cb(uv_process_t *ph, int64_t status, int term_signal) {
    jq_procproc_t *p = ph->data;
    p->exited = 1;
    p->status = status;
    p->term_signal = term_signal;
    if (p->state == JQ_PROCPROC_DYING)
        close_one((uv_handle_t *)&p->ph);
    else if (p->out_eof)
        gone(p);
}

/* ---- recycling ---- */

static void retire(jq_procproc_t *p, const char *why) {
    p->state = JQ_PROCPROC_RETIRING;
    jq_info("--proc %s (pid %d): recycling: %s", name_of(p), p->ph.pid, why);
    detach(p, 0);
}

/* A retiring process holds no job: its stdin's end tells it to exit. */
static void end_retiring(jq_procproc_t *p) {
    close_one((uv_handle_t *)&p->in);
    p->kill_at = uv_now(jq_pp.loop) + RETIRE_GRACE_MS;
    p->kill_why = "did not exit within 2 s of its stdin's end";
}

/* ---- writing ---- */

static void flush(jq_procproc_t *p);

static void on_written(uv_write_t *wr, int status) {
    jq_procproc_t *p = wr->data;
    p->writing = 0;
    msgpack_sbuffer_clear(&p->wfly);
    if (status != 0) {
        if (status != UV_ECANCELED && p->state != JQ_PROCPROC_DYING)
            killf(p, "could not be written to: %s", uv_strerror(status));
        return;
    }
    flush(p);
}

/* Writes the frames waiting, unless a write is in flight: those queued
 * behind it go together when it ends. */
static void flush(jq_procproc_t *p) {
    if (p->writing || p->wq.size == 0 || p->state == JQ_PROCPROC_DYING ||
        uv_is_closing((uv_handle_t *)&p->in))
        return;
    msgpack_sbuffer tmp = p->wfly;
    p->wfly = p->wq;
    p->wq = tmp;
    uv_buf_t b = uv_buf_init(p->wfly.data, (unsigned)p->wfly.size);
    p->writing = 1;
    int rc = uv_write(&p->wr, (uv_stream_t *)&p->in, &b, 1, on_written);
    if (rc != 0) {
        p->writing = 0;
        killf(p, "could not be written to: %s", uv_strerror(rc));
    }
}

void jq_procproc_send(jq_procproc_t *p, jq_procpool_ticket_t *tk) {
    int i = p->next_slot;
    for (int k = 0; k < p->max_inflight && p->slots[i]; k++) i = (i + 1) % p->max_inflight;
    p->next_slot = (i + 1) % p->max_inflight;
    uint64_t seq = (++p->gen << SEQ_BITS) | (uint64_t)i;
    size_t before = p->wq.size;
    if (jq_procwire_job(&p->wq, seq, tk->t) != 0) {
        p->wq.size = before;
        jq_task_t *t = tk->t;
        free(tk);
        t->hstate = NULL;
        jq_task_fail(t, "%s: cannot encode the job: out of memory", t->handler->name);
        jq_task_done(t);
        return;
    }
    p->slots[i] = tk;
    tk->p = p;
    tk->seq = seq;
    p->inflight++;
    flush(p);
}

void jq_procproc_cancel(jq_procproc_t *p, jq_procpool_ticket_t *tk) {
    p->cancelled++;
    if (p->state == JQ_PROCPROC_DYING) return;
    size_t before = p->wq.size;
    if (jq_procwire_cancel(&p->wq, tk->seq) != 0) p->wq.size = before;
    flush(p);
    uint64_t by = uv_now(jq_pp.loop) + CANCEL_GRACE_MS;
    if (p->kill_at == 0 || p->kill_at > by) {
        p->kill_at = by;
        p->kill_why = "did not answer a cancelled job within 1 s";
    }
}

/* ---- reading ---- */

static void on_hello(jq_procproc_t *p, const jq_proc_msg_t *m) {
    if (p->state != JQ_PROCPROC_STARTING) {
        killf(p, "sent a malformed frame: a second hello");
        return;
    }
    const jq_procpool_t *pool = p->pool;
    for (int i = 0; i < pool->ntypes; i++) {
        size_t n = strlen(pool->types[i]);
        int found = 0;
        for (uint32_t k = 0; k < m->types->via.array.size && !found; k++) {
            const msgpack_object *o = &m->types->via.array.ptr[k];
            found = o->via.str.size == n && memcmp(o->via.str.ptr, pool->types[i], n) == 0;
        }
        if (!found) {
            killf(p, "did not name the type %s in its hello", pool->types[i]);
            return;
        }
    }
    p->max_inflight = m->max_inflight > JQ_PROCPROC_INFLIGHT_MAX ? JQ_PROCPROC_INFLIGHT_MAX
                                                                 : (int)m->max_inflight;
    p->slots = calloc((size_t)p->max_inflight, sizeof *p->slots);
    if (p->slots == NULL) {
        p->max_inflight = 0;
        killf(p, "could not be given room for its jobs: out of memory");
        return;
    }
    p->state = JQ_PROCPROC_READY;
    p->kill_at = 0;
    jq_info("--proc %s (pid %d): ready, %d jobs at once", name_of(p), p->ph.pid, p->max_inflight);
    jq_procpool_dispatch(p->pool);
}

static void give_outcome(jq_task_t *t, const jq_proc_msg_t *m) {
    const char *name = t->handler->name;
    if (m->op == JQ_PROC_ERROR && m->permanent) {
        jq_task_fail_permanent(t, "%s: %.*s", name, (int)m->error_len, m->error);
    } else if (m->op == JQ_PROC_ERROR && m->retry_after_ms) {
        jq_task_retry_after(t, m->retry_after_ms, "%s: %.*s", name, (int)m->error_len, m->error);
    } else if (m->op == JQ_PROC_ERROR) {
        jq_task_fail(t, "%s: %.*s", name, (int)m->error_len, m->error);
    } else if (m->value && m->value->type != MSGPACK_OBJECT_NIL) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *m->value) != 0) {
            msgpack_sbuffer_clear(&t->result);
            jq_task_fail(t, "%s: out of memory", name);
        }
    }
}

static void on_reply(jq_procproc_t *p, const jq_proc_msg_t *m) {
    uint64_t i = m->seq & ((1u << SEQ_BITS) - 1);
    jq_procpool_ticket_t *tk = i < (uint64_t)p->max_inflight ? p->slots[i] : NULL;
    if (tk == NULL || tk->seq != m->seq) {
        killf(p, "sent a malformed frame: a reply to seq %llu, which it does not hold",
              (unsigned long long)m->seq);
        return;
    }
    if (m->op == JQ_PROC_PROGRESS) {
        if (tk->t) {
            char msg[JQ_TASK_PROGRESS_MSG_LEN + 1];
            size_t n = m->message_len < JQ_TASK_PROGRESS_MSG_LEN ? m->message_len
                                                                 : JQ_TASK_PROGRESS_MSG_LEN;
            if (m->message) memcpy(msg, m->message, n);
            msg[n] = '\0';
            jq_task_progress(tk->t, m->fraction, m->message ? msg : NULL);
        }
        return;
    }
    p->slots[i] = NULL;
    p->inflight--;
    p->jobs++;
    jq_task_t *t = tk->t;
    free(tk);
    if (t == NULL && --p->cancelled == 0 && p->state == JQ_PROCPROC_READY) p->kill_at = 0;
    if (p->slot >= 0) p->pool->failures[p->slot] = 0;
    /* Retired before the job's end is told, so that a job started by
     * that very call does not come back to this process. */
    if (jq_pp.max_jobs && p->jobs >= jq_pp.max_jobs && p->state == JQ_PROCPROC_READY) {
        char why[96];
        snprintf(why, sizeof why, "served %lld jobs (--proc-max-jobs)", p->jobs);
        retire(p, why);
    }
    if (t) {
        give_outcome(t, m);
        t->hstate = NULL;
        jq_task_done(t);
    }
    if (p->state == JQ_PROCPROC_RETIRING && p->inflight == 0) end_retiring(p);
}

static void on_frame(jq_procproc_t *p, const char *body, size_t len) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    jq_proc_msg_t m;
    char err[160];
    if (jq_procwire_parse(body, len, &u, &m, err, sizeof err) != 0)
        killf(p, "sent a malformed frame: %s", err);
    else if (m.op == JQ_PROC_HELLO)
        on_hello(p, &m);
    else if (p->state == JQ_PROCPROC_STARTING)
        killf(p, "sent a malformed frame: a reply before its hello");
    else
        on_reply(p, &m);
    msgpack_unpacked_destroy(&u);
}

/* Handles every whole frame read. */
static void read_frames(jq_procproc_t *p) {
    size_t off = 0;
    while (p->state != JQ_PROCPROC_DYING && p->rlen - off >= JQ_PROC_HDR) {
        uint32_t len = jq_procwire_len((unsigned char *)p->rbuf + off);
        if (len == 0 || len > jq_pp.max_frame) {
            killf(p, "sent a frame of %u bytes, over the limit of %zu (--max-payload + 64 KiB)",
                  len, jq_pp.max_frame);
            break;
        }
        if (p->rlen - off < JQ_PROC_HDR + (size_t)len) break;
        on_frame(p, p->rbuf + off + JQ_PROC_HDR, len);
        off += JQ_PROC_HDR + (size_t)len;
    }
    if (p->state == JQ_PROCPROC_DYING) {
        p->rlen = 0;
        return;
    }
    memmove(p->rbuf, p->rbuf + off, p->rlen - off);
    p->rlen -= off;
    if (p->state == JQ_PROCPROC_READY) jq_procpool_dispatch(p->pool);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    jq_procproc_t *p = h->data;
    (void)suggested;
    size_t want = p->rlen + READ_CHUNK;
    if (p->rlen >= JQ_PROC_HDR) {
        /* The frame begun: room for all of it at once (its length was
         * checked against the limit when it came). */
        size_t whole = JQ_PROC_HDR + jq_procwire_len((unsigned char *)p->rbuf);
        if (whole > want) want = whole;
    }
    if (p->rcap < want) {
        char *nb = realloc(p->rbuf, want);
        if (nb != NULL) {
            p->rbuf = nb;
            p->rcap = want;
        }
    }
    *b = uv_buf_init(p->rbuf + p->rlen, (unsigned)(p->rcap - p->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    jq_procproc_t *p = s->data;
    (void)b;
    if (n > 0) {
        p->rlen += (size_t)n;
        read_frames(p);
        return;
    }
    if (n == 0) return;
    uv_read_stop(s);
    p->out_eof = 1;
    if (p->state == JQ_PROCPROC_DYING) return;
    if (n != UV_EOF) {
        killf(p, "could not be read: %s", uv_strerror((int)n));
    } else if (p->exited) {
        gone(p);
    } else {
        /* Its exit is on its way, most likely; its status says more. */
        p->kill_at = uv_now(jq_pp.loop) + CANCEL_GRACE_MS;
        p->kill_why = "closed its stdout";
    }
}

/* ---- spawn and tick ---- */

/* The worker's environment without the consumer's own secrets: a handler
 * runs code a payload steers, and the Redis password (in the URL) and the
 * dashboard's admin token are not its to read. Built once; NULL when out
 * of memory, and spawn then refuses rather than pass them on. */
static char **handler_env(void) {
    static const char *const secret[] = {"JOBQ_ADMIN_TOKEN=", "JOBQ_REDIS_URL="};
    static char **env;
    if (env != NULL) return env;
    extern char **environ;
    size_t n = 0;
    while (environ[n] != NULL) n++;
    char **e = calloc(n + 1, sizeof(*e));
    if (e == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = 0;
        for (size_t j = 0; j < sizeof(secret) / sizeof(secret[0]); j++)
            if (strncmp(environ[i], secret[j], strlen(secret[j])) == 0) drop = 1;
        if (!drop) e[k++] = environ[i]; /* borrowed: environ outlives us */
    }
    return env = e;
}

static int spawn(jq_procproc_t *p) {
    char *args[JQ_EXEC_RUN_ARGS];
    jq_exec_cmd_args(&p->pool->cmd, args);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&p->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&p->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    if ((po.env = handler_env()) == NULL) return UV_ENOMEM;
    po.file = args[0];
    po.args = args;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    po.flags = UV_PROCESS_DETACHED; /* as exec_run.c: the master decides */
    return uv_spawn(jq_pp.loop, &p->ph, &po);
}

void jq_procproc_spawn(jq_procpool_t *pool, int slot) {
    jq_procproc_t *p = calloc(1, sizeof *p);
    if (p == NULL || uv_pipe_init(jq_pp.loop, &p->in, 0) != 0) {
        jq_error("--proc %s: cannot start a process: out of memory", pool->cmd.name);
        free(p);
        jq_procpool_vacate(pool, slot, 1);
        return;
    }
    p->pool = pool;
    p->slot = slot;
    p->ph.data = p->in.data = p->out.data = p->wr.data = p;
    msgpack_sbuffer_init(&p->wq);
    msgpack_sbuffer_init(&p->wfly);
    p->next = jq_pp.live;
    if (p->next) p->next->prev = p;
    jq_pp.live = p;
    p->open_handles = 1;
    int rc = uv_pipe_init(jq_pp.loop, &p->out, 0);
    if (rc == 0) {
        p->open_handles++;
        rc = spawn(p);
        p->open_handles++; /* even a failed uv_spawn leaves the handle to close */
    }
    pool->cur[slot] = p;
    if (rc != 0) {
        jq_error("--proc %s: cannot start %s: %s", pool->cmd.name, pool->cmd.program,
                 uv_strerror(rc));
        p->exited = 1;
        jq_procproc_kill(p, NULL); /* the slot starts again after a backoff */
        return;
    }
    p->spawned_at = uv_now(jq_pp.loop);
    p->kill_at = p->spawned_at + HELLO_MS;
    p->kill_why = "sent no hello within 10 s";
    rc = uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    if (rc != 0) {
        killf(p, "could not be read: %s", uv_strerror(rc));
        return;
    }
    jq_info("--proc %s (pid %d): started", pool->cmd.name, p->ph.pid);
}

/* The resident set of p's command (the guard's child), in bytes, or -1. */
static long long rss_of(jq_procproc_t *p) {
    char path[96], buf[64];
    if (p->child_pid == 0) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", p->ph.pid, p->ph.pid);
        FILE *f = fopen(path, "r");
        if (f == NULL) return -1;
        if (fscanf(f, "%d", &p->child_pid) != 1) p->child_pid = 0;
        fclose(f);
        if (p->child_pid == 0) return -1;
    }
    snprintf(path, sizeof path, "/proc/%d/statm", p->child_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    long long size, resident;
    int ok = fgets(buf, sizeof buf, f) && sscanf(buf, "%lld %lld", &size, &resident) == 2;
    fclose(f);
    return ok ? resident * sysconf(_SC_PAGESIZE) : -1;
}

void jq_procproc_tick(jq_procproc_t *p, uint64_t now, int rss) {
    if (p->state == JQ_PROCPROC_DYING) return;
    if (p->kill_at && now >= p->kill_at) {
        killf(p, "%s", p->kill_why);
        return;
    }
    if (!rss || p->state != JQ_PROCPROC_READY) return;
    long long bytes = rss_of(p);
    if (bytes <= jq_pp.max_rss) return;
    char why[96];
    snprintf(why, sizeof why, "RSS %lld MB over --proc-max-rss-mb", bytes >> 20);
    retire(p, why);
    if (p->inflight == 0) end_retiring(p);
}
