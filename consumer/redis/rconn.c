/* hiredis <-> libuv glue and the reconnect state machine. See rconn.h.
 * A little over 500 lines: the machine's states (connecting, handshake,
 * up, backing off, closing) and the glue that drives them read best in
 * one file. */

#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/sds.h>

#include "args.h"
#include "log.h"
#include "rconn.h"
#include "sentinel.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* With sentinels, a reconnect asks them where the master is now: during a
 * failover they name the dead one until they promote another, after
 * down-after-milliseconds and a vote (about 2 s with down-after 1 s),
 * and a 2 s backoff came on top of that (the gap was 3.2 s, now 2.8 s:
 * docs/BENCHMARKS.md). A question to a sentinel costs it next to nothing. */
#define SENTINEL_BACKOFF_MAX_MS 500

/* The handles live in their own allocation because hiredis tells us to
 * clean up (ev.cleanup) from inside redisAsyncFree, while libuv frees a
 * handle only in its close callback, later.
 *
 * Output is written before the loop polls, not when the socket polls
 * writable: hiredis asks for a write after each command, and waiting for
 * writability cost, per batch and connection, two epoll_ctl calls (watch
 * and unwatch) and an epoll_wait that returns at once. So a connected
 * context's write goes in the loop's prepare phase (on_prepare), which
 * runs after this turn's callbacks and before the next poll; only output
 * the socket did not take (a full send buffer) waits for writability. */
typedef struct glue {
    uv_poll_t poll;
    uv_prepare_t prepare; /* the write before the next poll */
    jq_rconn_t *c;
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    int events;
    int want_write; /* hiredis has output to write */
    size_t out_at;  /* bytes at the front of hiredis' output written (write_out) */
    /* Arguments written from the caller's memory (jq_rconn_args_ref), in
     * order: each goes out when the output reaches its place in hiredis'
     * buffer (at, counted in that buffer's bytes since the context began;
     * obuf_base is the count of obuf[0]). Plain TCP only. */
    struct out_ref {
        uint64_t at;
        const char *p;
        size_t len;
    } * refs;
    size_t nrefs, refs_head, refs_cap;
    size_t ref_done; /* bytes of refs[refs_head] written */
    uint64_t obuf_base;
    int open; /* handles not closed yet */
    /* rediss://: once TCP is connected, hiredis never touches the socket
     * again (it stays the reader and the formatter); the bytes go through
     * the session, see tls_on_poll. */
    int tls_state;
    jq_tls_conn_t *tls;
    int write_blocked; /* the session's last write (or handshake) waits for room */
    int read_blocked;  /* its last read waits for room (a key update) */
} glue_t;

enum { TLS_OFF, TLS_CONNECTING, TLS_BEGIN, TLS_HANDSHAKE, TLS_UP };

static void schedule_connect(jq_rconn_t *c);
static void on_timer_closed(uv_handle_t *h);
static void drop(jq_rconn_t *c, const char *why);
static void send_handshake(jq_rconn_t *c, redisAsyncContext *ac);

static void on_glue_closed(uv_handle_t *h) {
    glue_t *g = h->data;
    if (--g->open == 0) {
        free(g->refs);
        free(g);
    }
}

/* A write asked for while a prepare callback runs waits for writability
 * instead: a prepare handle started now would run only after the next
 * poll returns, perhaps half a second later (a blocking read). */
static int in_prepare;

/* hiredis 0.14.1 exports it without declaring it: it runs the reader
 * over what is buffered and calls each reply's callback, as
 * redisAsyncHandleRead does after its own read. */
void redisProcessCallbacks(redisAsyncContext *ac);

#define READ_BUF (64 * 1024)

static long long skip_steps(const jq_rconn_t *c) {
    return c->bulkcap.skipped + c->bulkcap.skipped_bytes / JQ_RCONN_SKIP_STEP;
}

/* Hands bytes read to the reader, through the bulk cap when one is set
 * (bulkcap.h). A refusal of the reader (out of memory) is in its err: the
 * callbacks that follow see it and disconnect. */
static void feed(jq_rconn_t *c, redisAsyncContext *ac, const char *buf, size_t n) {
    if (c->bulkcap.cap > 0)
        jq_bulkcap_feed(&c->bulkcap, ac->c.reader, buf, n);
    else
        redisReaderFeed(ac->c.reader, buf, n);
}

/* redisAsyncHandleRead, with the bytes passed through the connection's
 * bulk cap on their way to the reader. An end of stream or an error is
 * left to hiredis, whose own read then sees it and disconnects. */
static void read_capped(glue_t *g) {
    redisAsyncContext *ac = g->ac;
    char buf[READ_BUF];
    ssize_t n = ac->c.err ? -1 : read(ac->c.fd, buf, sizeof(buf));
    if (n < 0 && !ac->c.err && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        redisAsyncHandleRead(ac);
        return;
    }
    jq_rconn_t *c = g->c;
    long long steps = skip_steps(c);
    feed(c, ac, buf, (size_t)n);
    if (c->on_skipping && skip_steps(c) != steps) c->on_skipping(c);
    redisProcessCallbacks(ac);
}

static void glue_update(glue_t *g, int events);

/* ---- TLS (rediss://): the session on the socket, hiredis off it ---- */

/* Readable always; writable while the session waits for room. */
static void tls_events(glue_t *g) {
    glue_update(g, UV_READABLE | (g->write_blocked || g->read_blocked ? UV_WRITABLE : 0));
}

/* Ends the context for the session's failure. Before the connection
 * was first up, a certificate that does not verify (or the server's
 * refusal of ours) is a configuration error, handled like a refused
 * AUTH (on_refused); any other failure is an outage. */
static void tls_failed(glue_t *g, int rc, const char *why) {
    jq_rconn_t *c = g->c;
    if (rc == JQ_TLS_REFUSED && !c->up) snprintf(c->refused, sizeof(c->refused), "TLS");
    drop(c, why);
}

/* Writes hiredis' output through the session. */
static void tls_flush(glue_t *g) {
    char err[160];
    int rc = jq_tls_flush(g->tls, &g->ac->c, err, sizeof(err));
    if (rc < 0 && rc != JQ_TLS_WANT_READ && rc != JQ_TLS_WANT_WRITE) {
        /* TLS 1.3 ends the handshake on our side before the server has
         * checked our certificate: its refusal (an alert) may be waiting
         * behind the reset our first write ran into. */
        char buf[512], alert[160];
        if (!g->c->up &&
            jq_tls_read(g->tls, buf, sizeof(buf), alert, sizeof(alert)) == JQ_TLS_REFUSED) {
            tls_failed(g, JQ_TLS_REFUSED, alert);
            return;
        }
        tls_failed(g, rc, err);
        return;
    }
    g->want_write = rc != 0;
    /* WANT_READ: the next readable event writes again (tls_on_poll). */
    g->write_blocked = rc == JQ_TLS_WANT_WRITE;
    tls_events(g);
}

/* Reads what the session has, up to about 1 MiB a turn so that one huge
 * reply does not hold the loop, but never leaving bytes inside OpenSSL
 * (the socket would not poll readable for them), then runs the replies'
 * callbacks, which may free the context. */
static void tls_read(glue_t *g) {
    jq_rconn_t *c = g->c;
    redisAsyncContext *ac = g->ac;
    char buf[READ_BUF], err[160];
    size_t total = 0;
    ssize_t n;
    long long steps = skip_steps(c);
    while ((n = jq_tls_read(g->tls, buf, sizeof(buf), err, sizeof(err))) > 0) {
        feed(c, ac, buf, (size_t)n);
        total += (size_t)n;
        if (total >= 16 * sizeof(buf) && !jq_tls_pending(g->tls)) break;
    }
    g->read_blocked = n == JQ_TLS_WANT_WRITE;
    if (total > 0) {
        if (c->on_skipping && skip_steps(c) != steps) c->on_skipping(c);
        redisProcessCallbacks(ac);
        if (g->ac == NULL) return;
    }
    if (n <= 0 && n != JQ_TLS_WANT_READ && n != JQ_TLS_WANT_WRITE) {
        tls_failed(g, (int)n, err);
        return;
    }
    tls_events(g);
}

static void tls_handshake_step(glue_t *g) {
    char err[160];
    int rc = jq_tls_handshake(g->tls, err, sizeof(err));
    if (rc == 0) {
        g->tls_state = TLS_UP;
        g->write_blocked = 0;
        tls_flush(g); /* the Redis handshake, waiting since tls_begin */
    } else if (rc == JQ_TLS_WANT_READ || rc == JQ_TLS_WANT_WRITE) {
        g->write_blocked = rc == JQ_TLS_WANT_WRITE;
        tls_events(g);
    } else {
        tls_failed(g, rc, err);
    }
}

/* TCP is connected: the session starts, and the Redis handshake (AUTH,
 * SELECT, PING) is queued behind it in hiredis' buffer. */
static void tls_begin(glue_t *g) {
    jq_rconn_t *c = g->c;
    char err[160];
    const char *host = jq_url_sentinel(c->url) || c->url->cluster ? c->master.host : c->url->host;
    if (!(g->tls = jq_tls_conn_new(c->tls, g->ac->c.fd, host, err, sizeof(err)))) {
        drop(c, err);
        return;
    }
    g->tls_state = TLS_HANDSHAKE;
    send_handshake(c, g->ac);
    if (g->ac) tls_handshake_step(g);
}

static void tls_on_poll(glue_t *g, int status, int events) {
    if (g->tls_state == TLS_HANDSHAKE)
        tls_handshake_step(g);
    else if (status < 0)
        tls_read(g);
    /* libuv reports a socket error (POLLERR, a reset) as EBADF, and stops
     * watching: the read above found the reason (or a server's alert left
     * before the reset), else this is it. */
    if (status < 0 && g->ac) {
        char why[96];
        snprintf(why, sizeof(why), "cannot poll the socket: %s", uv_strerror(status));
        drop(g->c, why);
    }
    if (status < 0 || g->tls_state == TLS_HANDSHAKE || !g->ac) return;
    /* A writable event reads too: a read may be what waited for it, and a
     * read with nothing to give costs one recv. */
    tls_read(g);
    if (g->ac && sdslen(g->ac->c.obuf) > 0) tls_flush(g);
}

static void drop(jq_rconn_t *c, const char *why);

/* A reply said READONLY, UNBLOCKED, MASTERDOWN or LOADING
 * (jq_sentinel_not_master): with sentinels, the master we reached is one
 * no more (a failover demoted it, and it kept our connection). Dropped
 * here, after hiredis ran the callbacks of what it read, so that the
 * reconnect asks the sentinels again; the owner saw the error reply (a
 * refused EXEC is held, finish_hold.c; a read is sent again). Without
 * sentinels the server is the one the URL names either way: the owner
 * holds its writes. */
static void demoted(jq_rconn_t *c) {
    char code[sizeof(c->arena.not_master)];
    memcpy(code, c->arena.not_master, sizeof(code));
    c->arena.not_master[0] = '\0';
    if (!jq_url_sentinel(c->url) || c->to_sentinel || !c->up || c->closing || !c->ac) return;
    char why[sizeof(c->master.host) + 96];
    snprintf(why, sizeof(why), "%s:%d answered %s (no longer the master)", c->master.host,
             c->master.port, code);
    drop(c, why);
}

/* Drops what write_out wrote from the front of hiredis' output buffer:
 * before hiredis itself looks at the buffer again. */
static void out_compact(glue_t *g) {
    if (g->out_at && g->ac) sdsrange(g->ac->c.obuf, (ssize_t)g->out_at, -1);
    g->obuf_base += g->out_at;
    g->out_at = 0;
}

/* Where the next referenced argument goes, in obuf's bytes from its
 * front; len when none is pending. */
static size_t next_ref_at(const glue_t *g, size_t len) {
    if (g->refs_head == g->nrefs) return len;
    return (size_t)(g->refs[g->refs_head].at - g->obuf_base);
}

/* The output from where it stands, as iovecs: hiredis' buffer up to the
 * next referenced argument, that argument, and so on. Returns how many. */
static int out_iov(const glue_t *g, const char *obuf, size_t len, struct iovec *iov, int max) {
    size_t pos = g->out_at, h = g->refs_head, done = g->ref_done;
    int k = 0;
    while (k < max) {
        if (h < g->nrefs && g->refs[h].at - g->obuf_base == pos) {
            iov[k++] = (struct iovec){(void *)(g->refs[h].p + done), g->refs[h].len - done};
            done = 0;
            h++;
            continue;
        }
        size_t lim = h < g->nrefs ? (size_t)(g->refs[h].at - g->obuf_base) : len;
        if (pos >= lim) break;
        iov[k++] = (struct iovec){(void *)(obuf + pos), lim - pos};
        pos = lim;
    }
    return k;
}

/* n bytes of out_iov's output were written. */
static void out_advance(glue_t *g, size_t len, size_t n) {
    while (n > 0) {
        size_t at = next_ref_at(g, len);
        if (g->refs_head < g->nrefs && at == g->out_at) {
            struct out_ref *r = &g->refs[g->refs_head];
            size_t take = r->len - g->ref_done < n ? r->len - g->ref_done : n;
            g->ref_done += take;
            n -= take;
            if (g->ref_done == r->len) {
                g->refs_head++;
                g->ref_done = 0;
            }
            continue;
        }
        size_t take = at - g->out_at < n ? at - g->out_at : n;
        g->out_at += take;
        n -= take;
    }
    if (g->refs_head == g->nrefs) g->refs_head = g->nrefs = 0;
}

static void ev_add_read(void *p);
static void ev_add_write(void *p);
static void ev_del_write(void *p);

/* redisAsyncHandleWrite of a connected plain socket, without its memmove:
 * hiredis drops the written bytes from the front of its output buffer
 * after every write(), moving all the rest, so a 60 MiB result written a
 * socket buffer at a time moved gigabytes (an eighth of the worker's CPU
 * for a 60 MiB echo, docs/BENCHMARKS.md). Here they are counted in out_at,
 * and dropped once they are the larger half: each byte moves at most once
 * on average. */
static void write_out(glue_t *g) {
    redisAsyncContext *ac = g->ac;
    redisContext *c = &ac->c;
    if (!(c->flags & REDIS_CONNECTED) || c->err) {
        out_compact(g);
        redisAsyncHandleWrite(ac);
        return;
    }
    size_t len = sdslen(c->obuf);
    struct iovec iov[64];
    int k;
    while ((k = out_iov(g, c->obuf, len, iov, 64)) > 0) {
        ssize_t n = k == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, k);
        if (n > 0) {
            out_advance(g, len, (size_t)n);
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (!(n < 0 && errno == EINTR)) {
            /* hiredis' own write meets the error and ends the context. */
            out_compact(g);
            redisAsyncHandleWrite(ac);
            return;
        }
    }
    if (g->out_at == len && g->refs_head == g->nrefs) {
        /* As hiredis does: a buffer that held a large output goes. */
        sds fresh = sdsempty();
        if (fresh) {
            sdsfree(c->obuf);
            c->obuf = fresh;
        } else {
            sdsclear(c->obuf);
        }
        g->obuf_base += len;
        g->out_at = 0;
        ev_del_write(g);
    } else {
        if (g->out_at >= len / 2) out_compact(g);
        ev_add_write(g);
    }
    ev_add_read(g);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    glue_t *g = h->data;
    if (g->ac == NULL) return;
    if (g->tls_state >= TLS_HANDSHAKE) {
        jq_rconn_t *c = g->c;
        tls_on_poll(g, status, events);
        if (c->arena.not_master[0]) demoted(c);
        return;
    }
    if (status < 0) {
        /* libuv stopped the watcher; let hiredis find the error itself so
         * that its connect or disconnect callback runs. */
        if (g->ac->c.flags & REDIS_CONNECTED)
            redisAsyncHandleRead(g->ac);
        else
            write_out(g);
        return;
    }
    if ((events & UV_READABLE) && g->ac) {
        if (g->c->bulkcap.cap > 0 && (g->ac->c.flags & REDIS_CONNECTED))
            read_capped(g);
        else
            redisAsyncHandleRead(g->ac);
        if (g->c->arena.not_master[0]) demoted(g->c);
    }
    /* The read may have freed the context (cleanup cleared g->ac). */
    if ((events & UV_WRITABLE) && g->ac) write_out(g);
    /* rediss://: hiredis saw TCP connected (on_connect) and wrote nothing. */
    if (g->ac && g->tls_state == TLS_BEGIN) tls_begin(g);
}

static void on_poll_failed(uv_timer_t *t);

/* libuv refused to watch the socket: the context would wait for events
 * that never come. Called from inside hiredis (its ev hooks), where the
 * context may not be freed, so the drop is left to the connection's timer
 * (with no delay; a connect timeout or a backoff it replaces ends in a
 * drop as well). */
static void glue_failed(glue_t *g, int err) {
    jq_rconn_t *c = g->c;
    snprintf(c->poll_error, sizeof(c->poll_error), "cannot poll the socket: %s", uv_strerror(err));
    uv_timer_stop(&c->timer);
    if (uv_timer_start(&c->timer, on_poll_failed, 0, 0) != 0)
        jq_error("redis %s connection: %s, and its timer cannot start", c->name, c->poll_error);
}

static void glue_update(glue_t *g, int events) {
    if (events == g->events) return;
    g->events = events;
    if (!events) {
        uv_poll_stop(&g->poll);
        return;
    }
    int rc = uv_poll_start(&g->poll, events, on_poll);
    if (rc != 0) glue_failed(g, rc);
}

static void on_prepare(uv_prepare_t *h) {
    glue_t *g = h->data;
    uv_prepare_stop(h);
    if (g->ac == NULL || !g->want_write) return;
    if (g->tls_state != TLS_OFF) {
        /* Before the session is up the output waits (tls_handshake_step). */
        if (g->tls_state == TLS_UP) tls_flush(g);
        return;
    }
    /* Writes what the socket takes; hiredis asks again (ev_add_write, now
     * waiting for writability) for the rest, or drops the wish. */
    in_prepare++;
    write_out(g);
    in_prepare--;
}

static void ev_add_read(void *p) {
    glue_t *g = p;
    glue_update(g, g->events | UV_READABLE);
}
static void ev_del_read(void *p) {
    glue_t *g = p;
    glue_update(g, g->events & ~UV_READABLE);
}

static void ev_add_write(void *p) {
    glue_t *g = p;
    g->want_write = 1;
    if (g->events & UV_WRITABLE) return; /* already waiting for room */
    /* Until connected, writability is how the connect's end shows. */
    if (in_prepare || !(g->ac->c.flags & REDIS_CONNECTED) ||
        uv_prepare_start(&g->prepare, on_prepare) != 0)
        glue_update(g, g->events | UV_WRITABLE);
}

static void ev_del_write(void *p) {
    glue_t *g = p;
    g->want_write = 0;
    glue_update(g, g->events & ~UV_WRITABLE);
}

static void ev_cleanup(void *p) {
    glue_t *g = p;
    g->ac = NULL;
    jq_tls_conn_free(g->tls); /* before hiredis closes the socket */
    g->tls = NULL;
    uv_poll_stop(&g->poll);
    uv_prepare_stop(&g->prepare);
    uv_close((uv_handle_t *)&g->poll, on_glue_closed);
    uv_close((uv_handle_t *)&g->prepare, on_glue_closed);
}

static int glue_attach(jq_rconn_t *c, uv_loop_t *loop, redisAsyncContext *ac) {
    glue_t *g = calloc(1, sizeof(*g));
    if (!g) return -1;
    g->c = c;
    if (uv_prepare_init(loop, &g->prepare) != 0) {
        free(g);
        return -1;
    }
    g->prepare.data = g;
    g->open = 1;
    if (uv_poll_init_socket(loop, &g->poll, ac->c.fd) != 0) {
        uv_close((uv_handle_t *)&g->prepare, on_glue_closed);
        return -1;
    }
    g->open = 2;
    g->poll.data = g;
    g->ac = ac;
    g->tls_state = c->url->tls ? TLS_CONNECTING : TLS_OFF;
    ac->ev.data = g;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* A handshake error that is an outage, not a configuration error: Redis
 * still loading its data set, busy in a script, or a replica cut off. */
static int transient(const char *err) {
    static const char *const codes[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strncmp(err, codes[i], strlen(codes[i])) == 0) return 1;
    return 0;
}

static void lost(jq_rconn_t *c, const char *why) {
    int was_up = c->up;
    c->ac = NULL;
    c->up = 0;
    c->handshake = 0;
    if (c->closing) {
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    if (c->refused[0] && c->on_refused && !transient(c->why)) {
        /* A configuration error: the owner decides (the master exits). */
        c->on_refused(c, c->refused, c->why);
        c->refused[0] = c->why[0] = '\0';
        return;
    }
    int busy = c->refused[0] && transient(c->why);
    if (c->refused[0] && !busy) {
        /* Once per outage, even when the outage was logged as a plain
         * loss first: the refusal is what the operator must fix. */
        if (c->down_logged != 2 && !c->quiet_refusals) {
            jq_warn("redis %s connection: %s refused: %s; retrying", c->name, c->refused, c->why);
            c->down_logged = 2;
        }
    } else if (!c->down_logged) {
        jq_warn("redis %s connection: %s; reconnecting", c->name, busy ? c->why : why);
        c->down_logged = 1;
    }
    c->refused[0] = c->why[0] = '\0';
    if (c->to_sentinel) c->resolve.next++; /* the next attempt, the next sentinel */
    c->seed_next++;                        /* redis+cluster://: the next seed */
    if (was_up && c->on_down) c->on_down(c);
    /* Redis loading its data set answers at once and will be ready soon:
     * ask again at the shortest backoff rather than a growing one. */
    if (busy) c->backoff_ms = BACKOFF_MIN_MS;
    schedule_connect(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    jq_rconn_t *c = ac->data;
    if (c->why[0])
        lost(c, c->why);
    else
        lost(c, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "lost"));
}

static void handshake_done(jq_rconn_t *c) {
    uv_timer_stop(&c->timer);
    c->up = 1;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->down_logged) {
        jq_info("redis %s connection: back up", c->name);
        c->down_logged = 0;
    }
    if (c->on_up) c->on_up(c);
}

/* Replies to AUTH, SELECT and PING, in that order. The first error ends the
 * connection (the later replies are awaited by redisAsyncDisconnect and
 * ignored); the last good reply makes it up. */
static void on_handshake_reply(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    jq_rconn_t *c = ac->data;
    if (reply == NULL || c->closing) return; /* lost or closed: on_disconnect handles it */
    if (c->refused[0]) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(c->refused, sizeof(c->refused), "%s", (const char *)priv);
        snprintf(c->why, sizeof(c->why), "%s", reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (--c->handshake == 0) handshake_done(c);
}

/* With sentinels, the last of the handshake: a server that says it is
 * no master (a sentinel behind a failover) is an outage, and the next
 * attempt asks the next sentinel first. */
static void on_role_reply(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    jq_rconn_t *c = ac->data;
    char why[128];
    if (reply == NULL || c->closing || c->refused[0]) return;
    if (!jq_sentinel_role_ok(reply, why, sizeof(why))) {
        snprintf(c->why, sizeof(c->why), "%s:%d %s", c->master.host, c->master.port, why);
        c->resolve.next++;
        redisAsyncDisconnect(ac);
        return;
    }
    if (--c->handshake == 0) handshake_done(c);
}

/* To a sentinel itself (jq_rconn_init_sentinel): its own password, and
 * no database or role to check. */
static void send_sentinel_handshake(jq_rconn_t *c, redisAsyncContext *ac) {
    int rc = REDIS_OK;
    if (c->url->sentinel_password[0]) {
        rc |=
            redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s", c->url->sentinel_password);
        c->handshake++;
    }
    rc |= redisAsyncCommand(ac, on_handshake_reply, "PING", "PING");
    c->handshake++;
    if (rc != REDIS_OK) {
        snprintf(c->why, sizeof(c->why), "out of memory sending the handshake");
        redisAsyncDisconnect(ac);
    }
}

static void send_handshake(jq_rconn_t *c, redisAsyncContext *ac) {
    const jq_url_t *u = c->url;
    int rc = REDIS_OK;
    if (c->to_sentinel) {
        send_sentinel_handshake(c, ac);
        return;
    }
    /* PING last: with no password given, a Redis that wants one answers
     * NOAUTH here, before any command of the owner is sent. */
    if (u->password[0] && u->user[0])
        rc |= redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s %s", u->user, u->password);
    else if (u->password[0])
        rc |= redisAsyncCommand(ac, on_handshake_reply, "AUTH", "AUTH %s", u->password);
    c->handshake += u->password[0] ? 1 : 0;
    if (u->db) {
        rc |= redisAsyncCommand(ac, on_handshake_reply, "SELECT", "SELECT %d", u->db);
        c->handshake++;
    }
    rc |= redisAsyncCommand(ac, on_handshake_reply, "PING", "PING");
    c->handshake++;
    if (jq_url_sentinel(u)) {
        rc |= redisAsyncCommand(ac, on_role_reply, NULL, "ROLE");
        c->handshake++;
    }
    if (rc != REDIS_OK) {
        snprintf(c->why, sizeof(c->why), "out of memory sending the handshake");
        redisAsyncDisconnect(ac);
    }
}

static void on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    jq_rconn_t *c = ac->data;
    if (status != REDIS_OK) {
        uv_timer_stop(&c->timer);
        /* hiredis frees ac after this callback without calling
         * on_disconnect; ac->err may still be 0, errstr is the truth. */
        lost(c, ac->c.errstr[0] ? ac->c.errstr : "connect failed");
        return;
    }
    /* The connect timeout keeps running until the handshake is answered:
     * a Redis that accepts and then stalls is not up. Over TLS the
     * session comes first (on_poll, once hiredis let go: it would write
     * the handshake in clear right after this callback). */
    glue_t *g = ac->ev.data;
    if (g->tls_state == TLS_CONNECTING) {
        g->tls_state = TLS_BEGIN;
        return;
    }
    send_handshake(c, ac);
}

/* Ends the current context from outside hiredis' callbacks, for why. */
static void drop(jq_rconn_t *c, const char *why) {
    redisAsyncContext *ac = c->ac;
    if (ac->c.flags & REDIS_CONNECTED) {
        /* Freeing it calls on_disconnect (pending callbacks get NULL
         * first), which reconnects. */
        snprintf(c->why, sizeof(c->why), "%s", why);
        redisAsyncFree(ac);
        return;
    }
    /* Not yet connected: redisAsyncFree calls no callback of ours. */
    redisAsyncFree(ac);
    lost(c, why);
}

static void on_poll_failed(uv_timer_t *t) {
    jq_rconn_t *c = t->data;
    char why[sizeof(c->poll_error)];
    snprintf(why, sizeof(why), "%s", c->poll_error);
    c->poll_error[0] = '\0';
    if (c->ac) drop(c, why);
}

static void on_connect_timeout(uv_timer_t *t) {
    jq_rconn_t *c = t->data;
    if (c->ac == NULL || c->up) return;
    glue_t *g = c->ac->ev.data;
    if (g->tls_state == TLS_HANDSHAKE) {
        char why[64];
        snprintf(why, sizeof(why), "no TLS handshake in %d ms", c->connect_timeout_ms);
        drop(c, why);
        return;
    }
    if (c->handshake > 0) {
        char why[64];
        snprintf(why, sizeof(why), "no answer to AUTH/SELECT/PING in %d ms", c->connect_timeout_ms);
        drop(c, why);
        return;
    }
    drop(c, "connect timed out");
}

/* Connects to the URL's server, or to c->master with sentinels. */
static void connect_now(jq_rconn_t *c) {
    const jq_url_t *u = c->url;
    if (u->cluster && u->nseeds > 0) c->master = u->seeds[c->seed_next % u->nseeds];
    int at_master = jq_url_sentinel(u) || u->cluster;
    const char *host = at_master ? c->master.host : u->host;
    int port = at_master ? c->master.port : u->port;
    redisAsyncContext *ac =
        u->is_unix ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(host, port);
    if (ac == NULL) {
        lost(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        lost(c, why);
        return;
    }
    /* hiredis opens its socket without close-on-exec: a --proc or exec
     * child, or a worker the master spawns, would hold our connection. */
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    if (glue_attach(c, c->loop, ac) != 0) {
        redisAsyncFree(ac);
        lost(c, "cannot poll the socket");
        return;
    }
    ac->data = c;
    c->ac = ac;
    /* The contexts before this one are freed, readers included: their
     * last replies are back in the arena. */
    jq_reply_arena_attach(&c->arena, ac->c.reader);
    jq_bulkcap_reset(&c->bulkcap); /* a new stream: at a reply's first byte */
    /* Without its timeout a connect that stalls would stall for good.
     * Started before the connect callback is set, which starts the poll:
     * a poll that fails replaces this timer (glue_failed). */
    if (uv_timer_start(&c->timer, on_connect_timeout, c->connect_timeout_ms, 0) != 0) {
        c->ac = NULL;
        redisAsyncFree(ac);
        lost(c, "cannot start the connect timer");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* A subscription sends nothing for minutes: keepalive is what notices
     * a sentinel whose host went away without a word. */
    if (c->to_sentinel) redisEnableKeepAlive(&ac->c);
}

static int same_addr(const jq_url_addr_t *a, const jq_url_addr_t *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void on_resolved(jq_resolve_t *r) {
    jq_rconn_t *c = r->data;
    if (c->closing) {
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    if (c->pinned) {
        /* +switch-master came meanwhile (jq_rconn_switch): its address
         * is newer than this answer. */
        c->pinned = 0;
        connect_now(c);
        return;
    }
    if (r->rc == 0 && c->stale.port && same_addr(&r->addr, &c->stale) &&
        uv_now(c->loop) < c->stale_until) {
        const jq_url_addr_t *s = &c->url->sentinels[r->next];
        char why[2 * sizeof(s->host) + 96];
        snprintf(why, sizeof(why), "sentinel %s:%d still names %s:%d, which +switch-master left",
                 s->host, s->port, r->addr.host, r->addr.port);
        c->resolve.next = r->next + 1;
        lost(c, why);
        return;
    }
    if (r->rc != 0) {
        if (r->rc == JQ_SENTINEL_REFUSED) snprintf(c->refused, sizeof(c->refused), "SENTINEL");
        snprintf(c->why, sizeof(c->why), "%s", r->err);
        lost(c, r->err);
        return;
    }
    if (strcmp(r->addr.host, c->master.host) != 0 || r->addr.port != c->master.port) {
        const jq_url_addr_t *s = &c->url->sentinels[r->next];
        if (c->master.port)
            jq_info("redis %s connection: sentinel %s:%d names %s:%d master %s (was %s:%d)",
                    c->name, s->host, s->port, r->addr.host, r->addr.port, c->url->master_name,
                    c->master.host, c->master.port);
        else
            jq_debug("redis %s connection: sentinel %s:%d names %s:%d master %s", c->name, s->host,
                     s->port, r->addr.host, r->addr.port, c->url->master_name);
        c->master = r->addr;
    }
    connect_now(c);
}

/* Every (re)connect: with sentinels, asks them first (resolve.h), unless
 * +switch-master just said where the master is (jq_rconn_switch); to a
 * sentinel itself, the next one in turn. */
static void start_connect(jq_rconn_t *c) {
    if (c->to_sentinel) {
        c->master = c->url->sentinels[c->resolve.next % c->url->nsentinels];
        connect_now(c);
        return;
    }
    if (!jq_url_sentinel(c->url) || c->pinned) {
        c->pinned = 0;
        connect_now(c);
        return;
    }
    c->resolve.url = c->url;
    c->resolve.tls = c->tls;
    c->resolve.data = c;
    int rc = jq_resolve_start(&c->resolve, c->loop, on_resolved);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof(why), "cannot ask the sentinels: %s", uv_strerror(rc));
        lost(c, why);
    }
}

static void on_backoff(uv_timer_t *t) { start_connect(t->data); }

static void schedule_connect(jq_rconn_t *c) {
    int delay = c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > c->backoff_max_ms ? c->backoff_max_ms : c->backoff_ms * 2;
    if (c->backoff_ms < BACKOFF_MIN_MS) c->backoff_ms = BACKOFF_MIN_MS; /* after a switch's 0 */
    /* Only a closing timer refuses; c is then being closed anyway. */
    if (uv_timer_start(&c->timer, on_backoff, delay, 0) != 0)
        jq_error("redis %s connection: cannot start the reconnect timer; not reconnecting",
                 c->name);
}

static int setup(jq_rconn_t *c, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                 const char *name) {
    memset(c, 0, sizeof(*c));
    if (url->tls && !tls) return -1;
    c->loop = loop;
    c->url = url;
    c->tls = tls;
    c->name = name;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->backoff_max_ms = jq_url_sentinel(url) ? SENTINEL_BACKOFF_MAX_MS : BACKOFF_MAX_MS;
    c->connect_timeout_ms = 2000;
    jq_reply_arena_init(&c->arena);
    if (uv_timer_init(loop, &c->timer) != 0) return -1;
    c->timer.data = c;
    return 0;
}

int jq_rconn_init(jq_rconn_t *c, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                  const char *name) {
    if (setup(c, loop, url, tls, name) != 0) return -1;
    start_connect(c);
    return 0;
}

int jq_rconn_init_sentinel(jq_rconn_t *c, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                           const char *name) {
    if (!jq_url_sentinel(url) || setup(c, loop, url, tls, name) != 0) return -1;
    c->to_sentinel = 1;
    start_connect(c);
    return 0;
}

void jq_rconn_switch(jq_rconn_t *c, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                     const jq_url_addr_t *now) {
    if (!jq_url_sentinel(c->url) || c->to_sentinel || c->closing) return;
    c->stale = *old;
    c->stale_until = uv_now(c->loop) + JQ_RCONN_STALE_MS;
    if (!same_addr(&c->master, old)) return; /* elsewhere already (the new one) */
    jq_info("redis %s connection: sentinel %s:%d names %s:%d master %s (was %s:%d), by "
            "+switch-master",
            c->name, sentinel->host, sentinel->port, now->host, now->port, c->url->master_name,
            old->host, old->port);
    c->master = *now;
    c->pinned = 1;
    /* The new master is known and up: no backoff before the first try. */
    c->backoff_ms = 0;
    if (c->ac == NULL) return; /* waiting to reconnect, or asking the sentinels: pinned */
    char why[sizeof(old->host) + 64];
    snprintf(why, sizeof(why), "%s:%d is no longer the master (+switch-master)", old->host,
             old->port);
    drop(c, why);
}

/* The RESP of an argv command, written here rather than by hiredis'
 * redisAsyncCommandArgv, which formats each argument's header through
 * sdscatfmt: with the outcome script's long argv (finish.c) that was about
 * 6% of a worker's CPU. One buffer serves every command of the process
 * (only the loop thread sends); a large one (a big result) is let go
 * after its command, so it never holds memory at rest. */
#define RESP_KEEP (256 * 1024)
static char *resp_buf;
static size_t resp_cap;

static char *resp_head(char *p, char kind, size_t n) {
    *p++ = kind;
    p += jq_ll2str(p, (long long)n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* RESP of a's first n arguments (of a->argc in the header), and when
 * n < argc the length line of argument n. */
static const char *resp_format_n(const jq_args_t *a, int n_copy, size_t *len) {
    size_t need = 24 + 24 + 1; /* + the NUL below */
    for (int i = 0; i < n_copy; i++) need += 24 + 2 + a->lens[i];
    if (need > resp_cap) {
        char *b = malloc(need);
        if (!b) return NULL;
        free(resp_buf);
        resp_buf = b;
        resp_cap = need;
    }
    char *p = resp_head(resp_buf, '*', (size_t)a->argc);
    for (int i = 0; i < n_copy; i++) {
        size_t n = a->lens[i];
        p = resp_head(p, '$', n);
        memcpy(p, a->argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    if (n_copy < a->argc) p = resp_head(p, '$', a->lens[n_copy]);
    *len = (size_t)(p - resp_buf);
    /* hiredis reads a SUBSCRIBE's channels with strchr (nextArgument),
     * which would run past the last argument without it. */
    *p = '\0';
    return resp_buf;
}

static const char *resp_format(const jq_args_t *a, size_t *len) {
    return resp_format_n(a, a->argc, len);
}

int jq_rconn_args(jq_rconn_t *c, const jq_args_t *a, redisCallbackFn *fn, void *priv) {
    if (a->oom || !c->up || c->closing) return -1;
    size_t len;
    const char *cmd = resp_format(a, &len);
    int rc;
    if (c->route)
        rc = cmd && c->route(c->route_data, a, cmd, len, fn, priv) == 0 ? REDIS_OK : REDIS_ERR;
    else
        rc = cmd ? redisAsyncFormattedCommand(c->ac, fn, priv, cmd, len) : REDIS_ERR;
    if (resp_cap > RESP_KEEP) {
        free(resp_buf);
        resp_buf = NULL;
        resp_cap = 0;
    }
    return rc == REDIS_OK ? 0 : -1;
}

int jq_rconn_raw(jq_rconn_t *c, const char *cmd, size_t len, redisCallbackFn *fn, void *priv) {
    if (!c->up || c->closing) return -1;
    return redisAsyncFormattedCommand(c->ac, fn, priv, cmd, len) == REDIS_OK ? 0 : -1;
}

/* Room for n more references in g; -1 when there is none. */
static int refs_reserve(glue_t *g, size_t n) {
    if (g->nrefs + n <= g->refs_cap) return 0;
    size_t cap = g->refs_cap ? g->refs_cap : 64;
    while (cap < g->nrefs + n) cap *= 2;
    struct out_ref *r = realloc(g->refs, cap * sizeof(*r));
    if (!r) return -1;
    g->refs = r;
    g->refs_cap = cap;
    return 0;
}

int jq_rconn_args_ref(jq_rconn_t *c, const jq_args_t *a, int n_copy, redisCallbackFn *fn,
                      void *priv) {
    if (a->oom || !c->up || c->closing) return -1;
    /* In cluster mode the router holds its own copy (rcluster.c); over
     * TLS the session writes hiredis' buffer (tls_flush): copied. */
    if (c->route || n_copy < 1 || n_copy >= a->argc) return jq_rconn_args(c, a, fn, priv);
    glue_t *g = c->ac->ev.data;
    if (g->tls_state != TLS_OFF || refs_reserve(g, (size_t)(a->argc - n_copy)) < 0)
        return jq_rconn_args(c, a, fn, priv);
    size_t len, tail = 0;
    const char *cmd = resp_format_n(a, n_copy, &len);
    for (int i = n_copy; i < a->argc; i++) tail += 2 + 24;
    /* The room first: once hiredis holds the callback, the framing after
     * the head must not fail to be appended. */
    sds room = cmd ? sdsMakeRoomFor(c->ac->c.obuf, len + tail) : NULL;
    if (!room) return -1;
    c->ac->c.obuf = room;
    if (redisAsyncFormattedCommand(c->ac, fn, priv, cmd, len) != REDIS_OK) return -1;
    for (int i = n_copy; i < a->argc; i++) {
        sds ob = c->ac->c.obuf;
        g->refs[g->nrefs++] = (struct out_ref){g->obuf_base + sdslen(ob), a->argv[i], a->lens[i]};
        char frame[2 + 24], *p = frame;
        *p++ = '\r';
        *p++ = '\n';
        if (i + 1 < a->argc) p = resp_head(p, '$', a->lens[i + 1]);
        c->ac->c.obuf = sdscatlen(ob, frame, (size_t)(p - frame));
    }
    return 0;
}

void jq_rconn_cap(jq_rconn_t *c, long long cap) {
    c->bulkcap.cap = cap > 0 ? cap : 0;
    c->arena.marks = cap > 0;
}

static void on_timer_closed(uv_handle_t *h) {
    jq_rconn_t *c = h->data;
    /* Every context of c has been freed by now (the timer is closed only
     * after the last one let go, see lost), its reader with it. */
    jq_reply_arena_destroy(&c->arena);
    if (c->on_closed) c->on_closed(c);
}

void jq_rconn_close(jq_rconn_t *c, int graceful, jq_rconn_cb on_closed) {
    if (c->closing) return;
    c->closing = 1;
    c->on_closed = on_closed;
    uv_timer_stop(&c->timer);
    c->timer.data = c;
    if (c->resolve.busy) {
        /* The sentinels' answer closes the timer (on_resolved). */
        jq_resolve_cancel(&c->resolve);
        return;
    }
    if (c->ac == NULL) {
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    if (!c->up && c->handshake == 0) {
        /* Still connecting: no callback of ours will run. */
        redisAsyncFree(c->ac);
        c->ac = NULL;
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
        return;
    }
    if (graceful)
        redisAsyncDisconnect(c->ac);
    else
        redisAsyncFree(c->ac);
}
