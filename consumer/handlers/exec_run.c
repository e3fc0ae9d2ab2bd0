/* Running one exec job (exec_run.h). A run is a guard process (its exit is
 * the command's) and four pipes: stdin, stdout, stderr and the progress
 * pipe on the command's fd 3 (JOBQ_PROGRESS_FD; lines `progress F MSG`,
 * docs/HANDLERS.md); the attempt ends when the process has exited and both
 * output pipes are at their end, whichever comes last (the progress pipe
 * is not waited for).
 * The first libuv call that fails stops the command and fails the
 * attempt with its name and reason. */

#include "exec_run.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "exec_cmd.h"
#include "log.h"

#define ERR_TAIL 192  /* bytes of stderr kept for the error message */
#define PROG_LINE 256 /* a progress line longer than this is dropped */

typedef struct exec_run {
    uv_process_t proc;
    uv_pipe_t in, out, err, prog;
    uv_write_t wr;
    char progline[PROG_LINE]; /* the progress line being read */
    size_t proglen;
    int progskip; /* the line is too long: dropped up to its end */
    jq_task_t *t; /* NULL once cancelled */
    const jq_exec_cmd_t *cmd;
    msgpack_sbuffer inbuf; /* stdin bytes we encoded, if any */
    char *outbuf;
    size_t outlen, outcap;
    char errtail[ERR_TAIL];
    size_t errlen; /* bytes in errtail */
    int exited, out_eof, err_eof, over;
    int uv_error;        /* the first libuv call that failed... */
    const char *uv_what; /* ...and what it was doing */
    int64_t status;
    int term_signal;
    int open_handles; /* freed when it drops to 0 */
} exec_run_t;

/* ---- handles ---- */

static void on_run_closed(uv_handle_t *h) {
    exec_run_t *x = h->data;
    if (--x->open_handles > 0) return;
    msgpack_sbuffer_destroy(&x->inbuf);
    free(x->outbuf);
    free(x);
}

static void close_one(exec_run_t *x, uv_handle_t *h) {
    (void)x;
    if (!uv_is_closing(h)) uv_close(h, on_run_closed);
}

static void close_pipes(exec_run_t *x) {
    close_one(x, (uv_handle_t *)&x->in);
    close_one(x, (uv_handle_t *)&x->out);
    close_one(x, (uv_handle_t *)&x->err);
    close_one(x, (uv_handle_t *)&x->prog);
}

/* SIGTERM to the guard: it kills the command's whole tree. Returns 0 or a
 * libuv error (none when the guard has exited already). */
static int kill_guard(exec_run_t *x) {
    if (x->exited) return 0;
    int rc = uv_process_kill(&x->proc, SIGTERM);
    return rc == UV_ESRCH ? 0 : rc;
}

/* Keeps the first failure of the run's libuv calls (what, rc) and stops the
 * command: the attempt fails with it once the guard has exited. */
static void run_error(exec_run_t *x, const char *what, int rc) {
    if (x->uv_error == 0) {
        x->uv_error = rc;
        x->uv_what = what;
    }
    int krc = kill_guard(x);
    if (krc != 0) {
        /* The guard will not hear us: its own end, or the job's timeout,
         * ends the run. */
        jq_warn("exec %s: stopping the command: %s", x->cmd->name, uv_strerror(krc));
    }
}

/* ---- the outcome ---- */

/* The last bytes of stderr, printable, for an error message. */
static void err_tail(const exec_run_t *x, char *out, size_t outlen) {
    size_t n = x->errlen, start = 0, o = 0;
    while (n > 0 && isspace((unsigned char)x->errtail[n - 1])) n--;
    if (n + 1 > outlen) start = n + 1 - outlen;
    for (size_t i = start; i < n && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)x->errtail[i];
        out[o++] = c == '\n' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
}

/* Writes the run's outcome into t: failed (with the reason) or its result. */
static void give_outcome(exec_run_t *x, jq_task_t *t) {
    char tail[ERR_TAIL];
    err_tail(x, tail, sizeof(tail));
    const char *name = x->cmd->name, *sep = tail[0] ? ": " : "";
    if (x->uv_error) {
        jq_task_fail(t, "%s: %s: %s", name, x->uv_what, uv_strerror(x->uv_error));
    } else if (x->over) {
        jq_task_fail(t, "%s: stdout over --exec-max-output (%zu bytes)", name,
                     x->cmd->conf->max_output);
    } else if (x->term_signal) {
        jq_task_fail(t, "%s: killed by signal %d (%s)%s%s", name, x->term_signal,
                     strsignal(x->term_signal), sep, tail);
    } else if (x->status == JQ_EXEC_EXIT_PERMANENT) {
        jq_task_fail_permanent(t, "%s: exit status %lld%s%s", name, (long long)x->status, sep,
                               tail);
    } else if (x->status != 0) {
        jq_task_fail(t, "%s: exit status %lld%s%s", name, (long long)x->status, sep, tail);
    } else if (x->outlen > 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
        if (jq_codec_pack_text(&pk, x->outbuf, x->outlen) != 0) {
            msgpack_sbuffer_clear(&t->result); /* no half-written result */
            jq_task_fail(t, "%s: out of memory", name);
        }
    }
}

static void finish(exec_run_t *x) {
    jq_task_t *t = x->t;
    x->t = NULL;
    close_pipes(x);
    close_one(x, (uv_handle_t *)&x->proc);
    if (t == NULL) return;
    t->hstate = NULL;
    give_outcome(x, t);
    jq_task_done(t); /* last: the worker may free t */
}

static void maybe_finish(exec_run_t *x) {
    if (x->exited && x->out_eof && x->err_eof) finish(x);
}

/* ---- the process and its pipes ---- */

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal) {
    exec_run_t *x = p->data;
    x->exited = 1;
    x->status = status;
    x->term_signal = term_signal;
    if (x->t == NULL) {
        /* Cancelled: nobody waits for the outcome. */
        close_one(x, (uv_handle_t *)&x->proc);
        return;
    }
    maybe_finish(x);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    exec_run_t *x = h->data;
    (void)suggested;
    if (h == (uv_handle_t *)&x->err || h == (uv_handle_t *)&x->prog) {
        static char scratch[4096]; /* copied out at once */
        *b = uv_buf_init(scratch, sizeof(scratch));
        return;
    }
    size_t max = x->cmd->conf->max_output;
    if (x->outcap - x->outlen < 4096) {
        size_t cap = x->outcap ? x->outcap * 2 : 16384;
        if (cap > max + 4096) cap = max + 4096;
        char *nb = cap > x->outcap ? realloc(x->outbuf, cap) : NULL;
        if (nb != NULL) {
            x->outbuf = nb;
            x->outcap = cap;
        }
    }
    *b = uv_buf_init(x->outbuf + x->outlen, (unsigned)(x->outcap - x->outlen));
}

/* A pipe at its end (or broken): no more reads from it. */
static void read_ended(exec_run_t *x, uv_stream_t *s, int *eof) {
    int rc = uv_read_stop(s);
    if (rc != 0) run_error(x, "stopping a read", rc);
    *eof = 1;
    maybe_finish(x);
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    exec_run_t *x = s->data;
    (void)b;
    if (n > 0) {
        x->outlen += (size_t)n;
        if (x->outlen <= x->cmd->conf->max_output) return;
        /* Over the limit: stop the command now instead of buffering on. */
        x->over = 1;
        int rc = kill_guard(x);
        if (rc != 0) run_error(x, "stopping the command", rc);
    } else if (n == 0) {
        return;
    } else if (n != UV_EOF) {
        /* Out of memory (no buffer) or a broken pipe: no result to give. */
        run_error(x, "reading stdout", (int)n);
    }
    read_ended(x, s, &x->out_eof);
}

/* Keeps the last ERR_TAIL bytes of what the command wrote to stderr. */
static void keep_tail(exec_run_t *x, const char *p, size_t k) {
    if (k >= ERR_TAIL) {
        memcpy(x->errtail, p + k - ERR_TAIL, ERR_TAIL);
        x->errlen = ERR_TAIL;
        return;
    }
    size_t keep = x->errlen + k > ERR_TAIL ? ERR_TAIL - k : x->errlen;
    memmove(x->errtail, x->errtail + x->errlen - keep, keep);
    memcpy(x->errtail + keep, p, k);
    x->errlen = keep + k;
}

static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    exec_run_t *x = s->data;
    if (n > 0) {
        keep_tail(x, b->base, (size_t)n);
        return;
    }
    if (n == 0) return;
    /* A stderr we cannot read only costs the message its tail. */
    read_ended(x, s, &x->err_eof);
}

/* One line from the progress pipe: `progress <fraction> [message]`;
 * anything else is ignored. */
static void progress_line(exec_run_t *x, char *line) {
    if (x->t == NULL || strncmp(line, "progress ", 9) != 0) return;
    char *end;
    double f = strtod(line + 9, &end);
    if (end == line + 9 || (*end != '\0' && *end != ' ')) return;
    while (*end == ' ') end++;
    jq_task_progress(x->t, f, end);
}

static void on_prog_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    exec_run_t *x = s->data;
    if (n < 0) {
        /* Its end, or a pipe we cannot read: no more progress, no harm. */
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = b->base[i];
        if (c == '\n') {
            x->progline[x->proglen] = '\0';
            if (!x->progskip) progress_line(x, x->progline);
            x->proglen = 0;
            x->progskip = 0;
        } else if (x->proglen + 1 < sizeof(x->progline)) {
            x->progline[x->proglen++] = c;
        } else {
            x->progskip = 1;
        }
    }
}

static void on_stdin_written(uv_write_t *w, int status) {
    exec_run_t *x = w->data;
    /* A command that exits without reading its stdin (EPIPE) is its own
     * business; its exit status says how it went. ECANCELED: we closed. */
    if (status != 0 && status != UV_EPIPE && status != UV_ECANCELED)
        run_error(x, "writing stdin", status);
    close_one(x, (uv_handle_t *)&x->in);
}

/* ---- start and cancel ---- */

static int spawn(exec_run_t *x, jq_task_t *t) {
    char *args[JQ_EXEC_RUN_ARGS];
    jq_exec_cmd_args(x->cmd, args);
    jq_exec_env_t env;
    jq_exec_cmd_env(x->cmd, t, &env);
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&x->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&x->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&x->err;
    stdio[3].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&x->prog;
    uv_process_options_t po;
    memset(&po, 0, sizeof(po));
    po.file = args[0];
    po.args = args;
    po.env = env.env;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 4;
    /* A session of its own: a terminal's signals reach only the master,
     * which decides; the guard hears of its end from us or the kernel. */
    po.flags = UV_PROCESS_DETACHED;
    return uv_spawn(t->loop, &x->proc, &po);
}

/* A new run with its four pipes initialised, or NULL with t failed. */
static exec_run_t *run_new(jq_task_t *t, const jq_exec_cmd_t *c) {
    exec_run_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        jq_task_fail(t, "%s: out of memory", c->name);
        return NULL;
    }
    x->cmd = c;
    x->wr.data = x;
    x->proc.data = x;
    msgpack_sbuffer_init(&x->inbuf);
    uv_pipe_t *pipes[] = {&x->in, &x->out, &x->err, &x->prog};
    for (size_t i = 0; i < 4; i++) {
        int rc = uv_pipe_init(t->loop, pipes[i], 0);
        if (rc != 0) {
            jq_task_fail(t, "%s: cannot start: uv_pipe_init: %s", c->name, uv_strerror(rc));
            for (size_t k = 0; k < i; k++) close_one(x, (uv_handle_t *)pipes[k]);
            if (i == 0) free(x);
            return NULL;
        }
        pipes[i]->data = x;
        x->open_handles++;
    }
    return x;
}

/* The run is under way: read its output, write its stdin (in). */
static void run_watch(exec_run_t *x, uv_buf_t in) {
    int rc = uv_read_start((uv_stream_t *)&x->out, on_alloc, on_out_read);
    if (rc != 0) {
        run_error(x, "reading stdout", rc);
        x->out_eof = 1;
    }
    rc = uv_read_start((uv_stream_t *)&x->err, on_alloc, on_err_read);
    if (rc != 0) {
        run_error(x, "reading stderr", rc);
        x->err_eof = 1;
    }
    /* A command that writes no progress costs this pipe only. */
    if (uv_read_start((uv_stream_t *)&x->prog, on_alloc, on_prog_read) != 0)
        close_one(x, (uv_handle_t *)&x->prog);
    rc = in.len == 0 ? 0 : uv_write(&x->wr, (uv_stream_t *)&x->in, &in, 1, on_stdin_written);
    if (rc != 0) run_error(x, "writing stdin", rc);
    if (in.len == 0 || rc != 0) close_one(x, (uv_handle_t *)&x->in);
}

int jq_exec_run_start(jq_task_t *t) {
    const jq_exec_cmd_t *c = t->handler->data;
    exec_run_t *x = run_new(t, c);
    if (x == NULL) return -1;
    uv_buf_t in;
    if (jq_exec_cmd_stdin(c, t->payload, &x->inbuf, &in) != 0) {
        close_pipes(x);
        return jq_task_fail(t, "%s: cannot encode the payload", c->name);
    }
    int rc = spawn(x, t);
    /* Even a failed uv_spawn leaves the process handle to be closed. */
    x->open_handles++;
    if (rc != 0) {
        x->exited = 1;
        close_pipes(x);
        close_one(x, (uv_handle_t *)&x->proc);
        return jq_task_fail(t, "%s: cannot start: %s", c->name, uv_strerror(rc));
    }
    x->t = t;
    t->hstate = x;
    run_watch(x, in);
    return 0;
}

void jq_exec_run_cancel(jq_task_t *t) {
    exec_run_t *x = t->hstate;
    if (x == NULL) return;
    t->hstate = NULL;
    x->t = NULL;
    int rc = kill_guard(x);
    if (rc != 0)
        jq_warn("exec %s: cancelling: cannot signal the guard (pid %d): %s", x->cmd->name,
                x->proc.pid, uv_strerror(rc));
    /* Closing stdin drops the pending write, which may point into the
     * payload the worker frees after this call. */
    close_pipes(x);
    if (x->exited) close_one(x, (uv_handle_t *)&x->proc);
    /* else on_exit_cb closes the process handle (the guard dies at once). */
}
