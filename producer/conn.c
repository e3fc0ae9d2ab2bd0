/* The client's connection: connect from a URL (AUTH, SELECT), reconnect
 * after a fault, the small helpers every libjobq call uses to build a
 * command and read its reply, and the pipeline (jq_pipe_t), the one place
 * that knows what a half-sent pipeline does to the connection. */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#include "client_int.h"
#include "cluster.h"
#include "sentinel.h"

/* A connect that hangs longer than this is a dead server, not a slow one. */
#define CONNECT_TIMEOUT_S 5
/* Per-command socket timeout: far above the one-second BLPOP slices of
 * jq_client_wait and the time to write a 64 MiB payload on a sane link. */
#define COMMAND_TIMEOUT_S 30
/* redis+sentinel://: a client that lives on (the dashboard's and
 * /metrics' reads, a long-running producer) asks the sentinels again at
 * most this often, before a command or a pipeline: a switchover leaves the
 * old master up, answering reads for good (as a replica, after some
 * seconds), and reads get no READONLY to say so. A short-lived `jobq`
 * never asks twice. */
#define SENTINEL_RECHECK_MS 5000

char *jq_memdup(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void jq_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int jq_check_name(const char *what, const char *s, char *err, size_t errlen) {
    if (s && jq_name_valid(s, strlen(s))) return 0;
    jq_seterr(err, errlen, "bad %s '%.140s': want 1 to 128 bytes of [A-Za-z0-9_.:-]", what,
              s ? s : "");
    return -1;
}

int jq_check_queue(const char **queue, const char *id, char *err, size_t errlen) {
    if (!*queue) *queue = JQ_QUEUE_DEFAULT;
    if (jq_check_name("queue name", *queue, err, errlen) < 0) return -1;
    return id ? jq_check_name("job id", id, err, errlen) : 0;
}

/* ---- argv builder: the rest is common/args.c ---- */

void jq_args_key(jq_args_t *a, const jq_client_t *c, const char *queue, const char *what,
                 const char *id) {
    char key[JQ_KEY_MAX];
    int n = id ? jq_key_id(key, sizeof(key), c->prefix, queue, what, id)
               : jq_key(key, sizeof(key), c->prefix, queue, what);
    /* Names are checked to 128 bytes, so a key always fits; a miss here
     * is a bug, reported like an allocation failure rather than sent. */
    if (n < 0) {
        a->oom = 1;
        return;
    }
    jq_args_dup(a, key, (size_t)n);
}

void jq_args_del_result(jq_args_t *a, const jq_client_t *c, const char *queue, const char *id) {
    char chunks[JQ_CLIENT_ID_LEN + 16];
    snprintf(chunks, sizeof(chunks), "%s:chunks", id);
    jq_args_str(a, "DEL");
    jq_args_key(a, c, queue, "result", id);
    jq_args_key(a, c, queue, "result", chunks);
    jq_args_key(a, c, queue, "notify", id);
}

/* ---- connection ---- */

static struct timeval ms_tv(long long ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    return tv;
}

void jq_link_close(jq_link_t *link) {
    jq_tls_conn_free(link->session);
    link->session = NULL;
    if (link->ctx) redisFree(link->ctx);
    link->ctx = NULL;
}

int jq_link_append(jq_link_t *link, int argc, const char **argv, const size_t *lens, char *err,
                   size_t errlen) {
    if (!jq_link_up(link)) {
        jq_seterr(err, errlen, "redis connection lost");
        return -1;
    }
    if (redisAppendCommandArgv(link->ctx, argc, argv, lens) != REDIS_OK) {
        jq_seterr(err, errlen, "redis: %s", link->ctx->errstr);
        return -1;
    }
    return 0;
}

/* Reads the next reply; NULL when the connection broke, which is then
 * marked so: a sync context that failed mid-reply cannot be trusted again. */
redisReply *jq_link_read(jq_link_t *link, char *err, size_t errlen) {
    void *reply = NULL;
    redisContext *ctx = link->ctx;
    if (!ctx ||
        (link->session ? jq_tls_sync_reply(link->session, ctx, &reply)
                       : redisGetReply(ctx, &reply)) != REDIS_OK ||
        !reply) {
        jq_seterr(err, errlen, "redis connection lost: %s",
                  ctx && ctx->errstr[0] ? ctx->errstr : "no reply");
        if (ctx) ctx->err = ctx->err ? ctx->err : REDIS_ERR_IO;
        return NULL;
    }
    return reply;
}

/* One command on link, its reply checked. Returns 0, or -1 with err. */
static int link_do(jq_link_t *link, const jq_args_t *a, char *err, size_t errlen) {
    if (a->oom) {
        jq_seterr(err, errlen, "out of memory building a redis command");
        return -1;
    }
    if (jq_link_append(link, a->argc, a->argv, a->lens, err, errlen) < 0) return -1;
    redisReply *r = jq_link_read(link, err, errlen);
    int rc = jq_reply_ok(r, err, errlen);
    if (r) freeReplyObject(r);
    return rc;
}

static int auth_and_select(jq_client_t *c, jq_link_t *link, char *err, size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    char why[JQ_KEY_MAX];
    int rc = 0;
    if (c->url.password[0]) {
        jq_args_str(&a, "AUTH");
        if (c->url.user[0]) jq_args_str(&a, c->url.user);
        jq_args_str(&a, c->url.password);
        if ((rc = link_do(link, &a, why, sizeof(why))) < 0)
            jq_seterr(err, errlen, "redis AUTH failed: %s", why);
        jq_args_reset(&a);
    }
    if (rc == 0 && c->url.db) {
        jq_args_str(&a, "SELECT");
        jq_args_ll(&a, c->url.db);
        if ((rc = link_do(link, &a, why, sizeof(why))) < 0)
            jq_seterr(err, errlen, "redis SELECT %d failed: %s", c->url.db, why);
    }
    jq_args_destroy(&a);
    return rc;
}

static void disconnect(jq_client_t *c) { jq_link_close(&c->link); }

/* The TLS handshake on the connected socket, blocking within the connect
 * timeout. */
static int tls_start(jq_client_t *c, jq_link_t *link, const char *host, const char *where,
                     char *err, size_t errlen) {
    char why[256];
    if ((link->session = jq_tls_sync_start(c->tls, link->ctx, host, why, sizeof(why)))) return 0;
    jq_seterr(err, errlen, "TLS with redis at %s: %s", where, why);
    return -1;
}

/* With sentinels: whether the server we reached says it is the master
 * (sentinel.h). Returns 0, or -1 with err. */
static int check_role(jq_client_t *c, const char *where, char *err, size_t errlen) {
    jq_args_t a;
    char why[256];
    jq_args_init(&a);
    jq_args_str(&a, "ROLE");
    redisReply *r = jq_client_run(c, &a, why, sizeof(why));
    jq_args_destroy(&a);
    if (!r) {
        /* ROLE refused (NOPERM, a renamed command): the sentinels' word
         * stands (sentinel.h). */
        if (jq_link_up(&c->link)) return 0;
        jq_seterr(err, errlen, "redis at %s: ROLE: %s", where, why);
        return -1;
    }
    int ok = jq_sentinel_role_ok(r, why, sizeof(why));
    freeReplyObject(r);
    if (!ok) jq_seterr(err, errlen, "redis at %s %s", where, why);
    return ok ? 0 : -1;
}

void jq_link_timeout(const jq_client_t *c, jq_link_t *link) {
    struct timeval ct = {COMMAND_TIMEOUT_S, 0};
    if (c->timeout_ms > 0) ct = ms_tv(c->timeout_ms);
    if (jq_link_up(link)) redisSetTimeout(link->ctx, ct);
}

int jq_link_open(jq_client_t *c, jq_link_t *link, const jq_url_addr_t *addr, const char *where,
                 char *err, size_t errlen) {
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};
    if (c->timeout_ms > 0 && c->timeout_ms < CONNECT_TIMEOUT_S * 1000) tv = ms_tv(c->timeout_ms);
    redisContext *ctx = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, tv)
                                       : redisConnectWithTimeout(addr->host, addr->port, tv);
    if (!ctx || ctx->err) {
        jq_seterr(err, errlen, "cannot connect to redis at %s: %s", where,
                  ctx ? ctx->errstr : "out of memory");
        if (ctx) redisFree(ctx);
        return -1;
    }
    link->ctx = ctx;
    /* hiredis opens its socket without close-on-exec: a program of the
     * caller's would inherit our connection. */
    fcntl(ctx->fd, F_SETFD, FD_CLOEXEC);
    redisSetTimeout(ctx, tv);
    if (c->tls && tls_start(c, link, addr->host, where, err, errlen) < 0) {
        jq_link_close(link);
        return -1;
    }
    jq_link_timeout(c, link);
    if (auth_and_select(c, link, err, errlen) < 0) {
        jq_link_close(link);
        return -1;
    }
    return 0;
}

/* Connects to addr (the URL's, or the master the sentinels named), then
 * TLS, AUTH, SELECT and, with sentinels, ROLE. Returns 0, or -1 with err. */
static int connect_to(jq_client_t *c, const jq_url_addr_t *addr, const char *where, char *err,
                      size_t errlen) {
    c->demoted = 0;
    if (jq_link_open(c, &c->link, addr, where, err, errlen) < 0) return -1;
    if (jq_url_sentinel(&c->url) && check_role(c, where, err, errlen) < 0) {
        disconnect(c);
        return -1;
    }
    return 0;
}

/* redis+sentinel://: asks the sentinels where the master is and connects
 * there; a server that is no master (a sentinel behind a failover) sends
 * us to the next sentinel, each asked at most once per call. */
static int connect_sentinel(jq_client_t *c, char *err, size_t errlen) {
    char url[700];
    jq_url_format(&c->url, url, sizeof(url));
    for (int tries = 0; tries < c->url.nsentinels; tries++) {
        jq_url_addr_t m;
        char why[512];
        int rc = jq_sentinel_resolve(&c->url, c->tls, JQ_SENTINEL_TIMEOUT_MS, &c->next_sentinel, &m,
                                     why, sizeof(why));
        if (rc < 0) {
            jq_seterr(err, errlen, "%s: %s (%s)", url,
                      rc == JQ_SENTINEL_REFUSED ? "the sentinels refused"
                                                : "no sentinel named the master",
                      why);
            return -1;
        }
        char where[700];
        const jq_url_addr_t *s = &c->url.sentinels[c->next_sentinel];
        snprintf(where, sizeof(where), "%s:%d (master %s, from sentinel %s:%d)", m.host, m.port,
                 c->url.master_name, s->host, s->port);
        if (connect_to(c, &m, where, err, errlen) == 0) {
            c->master = m;
            return 0;
        }
        c->next_sentinel++;
    }
    return -1;
}

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every SENTINEL_RECHECK_MS, with nothing queued on the connection: when
 * the sentinels name another master now, the connection is let go (the
 * next command connects there). Sentinels that do not answer leave it
 * as it is. */
static void recheck_sentinels(jq_client_t *c) {
    if (!jq_url_sentinel(&c->url) || !jq_link_up(&c->link)) return;
    long long now = mono_ms();
    if (now - c->checked_ms < SENTINEL_RECHECK_MS) return;
    c->checked_ms = now;
    jq_url_addr_t m;
    char why[512];
    int next = c->next_sentinel;
    if (jq_sentinel_resolve(&c->url, c->tls, JQ_SENTINEL_TIMEOUT_MS, &next, &m, why, sizeof(why)) !=
        0)
        return;
    if (m.port != c->master.port || strcmp(m.host, c->master.host) != 0) disconnect(c);
}

static int connect_now(jq_client_t *c, char *err, size_t errlen) {
    c->checked_ms = mono_ms();
    if (jq_url_sentinel(&c->url)) return connect_sentinel(c, err, errlen);
    jq_url_addr_t addr;
    char where[600];
    snprintf(addr.host, sizeof(addr.host), "%s", c->url.host);
    addr.port = c->url.port;
    jq_url_format(&c->url, where, sizeof(where));
    return connect_to(c, &addr, where, err, errlen);
}

void jq_client_set_timeout(jq_client_t *c, long long ms) {
    c->timeout_ms = ms > 0 ? ms : 0;
    jq_link_timeout(c, &c->link);
    if (c->cl) jq_cluster_timeouts(c);
}

int jq_client_ready(jq_client_t *c, char *err, size_t errlen) {
    if (c->cl) return jq_cluster_ready(c, err, errlen);
    if (jq_link_up(&c->link)) return 0;
    disconnect(c);
    return connect_now(c, err, errlen);
}

jq_client_t *jq_client_new(const char *url, const char *prefix, char *err, size_t errlen) {
    return jq_client_new_tls(url, prefix, NULL, err, errlen);
}

jq_client_t *jq_client_new_tls(const char *url, const char *prefix, const jq_client_tls_t *tls,
                               char *err, size_t errlen) {
    jq_client_t *c = calloc(1, sizeof(*c));
    if (!c) {
        jq_seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (!prefix) prefix = JQ_PREFIX_DEFAULT;
    if (jq_check_name("prefix", prefix, err, errlen) < 0) goto err;
    snprintf(c->prefix, sizeof(c->prefix), "%s", prefix);
    if (jq_url_parse(url ? url : JQ_URL_DEFAULT, &c->url, err, errlen) < 0) goto err;
    if (c->url.tls && !(c->tls = jq_tls_new(tls, err, errlen))) goto err;
    if (c->url.cluster) {
        if (jq_cluster_start(c, err, errlen) < 0) goto err;
        return c;
    }
    if (connect_now(c, err, errlen) < 0) goto err;
    /* A redis:// URL may name one node of a cluster: then route by slot
     * from here on, that node the seed. */
    if (!c->url.is_unix && !jq_url_sentinel(&c->url) && jq_cluster_detect(c, err, errlen) < 0)
        goto err;
    return c;
err:
    jq_cluster_free(c);
    disconnect(c);
    jq_tls_free(c->tls);
    memset(&c->url, 0, sizeof(c->url));
    free(c);
    return NULL;
}

void jq_client_free(jq_client_t *c) {
    if (!c) return;
    disconnect(c);
    jq_cluster_free(c);
    jq_tls_free(c->tls);
    /* The password sat in this struct: do not leave it in freed memory. */
    memset(&c->url, 0, sizeof(c->url));
    free(c);
}

const char *jq_client_prefix(const jq_client_t *c) { return c->prefix; }

struct redisContext *jq_client_context(jq_client_t *c) {
    /* In cluster mode no one connection serves every key. */
    return c->link.session || c->cl ? NULL : c->link.ctx;
}

/* ---- commands ---- */

int jq_reply_ok(const redisReply *r, char *err, size_t errlen) {
    if (!r) {
        jq_seterr(err, errlen, "no reply from redis");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        jq_seterr(err, errlen, "redis: %.*s", (int)r->len, r->str);
        return -1;
    }
    return 0;
}

int jq_reply_each_ok(const redisReply *r, char *err, size_t errlen) {
    for (size_t k = 0; k < r->elements; k++)
        if (jq_reply_ok(r->element[k], err, errlen) < 0) return -1;
    return 0;
}

int jq_reply_is(const redisReply *r, const char *s) {
    return r->type == REDIS_REPLY_STRING && r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

char *jq_reply_join(const redisReply *r, size_t *len) {
    *len = 0;
    for (size_t i = 0; i < r->elements; i++) *len += r->element[i]->len;
    char *buf = malloc(*len ? *len : 1);
    if (!buf) return NULL;
    size_t at = 0;
    for (size_t i = 0; i < r->elements; i++) {
        memcpy(buf + at, r->element[i]->str, r->element[i]->len);
        at += r->element[i]->len;
    }
    return buf;
}

int jq_reply_ll(const redisReply *r, long long *out) {
    if (!r) return -1;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING) return -1;
    char buf[32];
    if (r->len == 0 || r->len >= sizeof(buf)) return -1;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end != '\0' && *end != '.') return -1; /* scores may be "12.0" */
    *out = v;
    return 0;
}

/* Queues one command on the connection (no I/O yet). A failure queues
 * nothing: hiredis appends a command whole or not at all. */
static int append(jq_client_t *c, const jq_args_t *a, char *err, size_t errlen) {
    if (a->oom) {
        jq_seterr(err, errlen, "out of memory building a redis command");
        return -1;
    }
    if (jq_client_ready(c, err, errlen) < 0) return -1;
    return jq_link_append(&c->link, a->argc, a->argv, a->lens, err, errlen);
}

static redisReply *read_reply(jq_client_t *c, char *err, size_t errlen) {
    redisReply *r = jq_link_read(&c->link, err, errlen);
    if (r && r->type == REDIS_REPLY_ERROR && jq_url_sentinel(&c->url) &&
        jq_sentinel_not_master(r->str, r->len))
        c->demoted = 1;
    return r;
}

/* After a READONLY reply under sentinels (or UNBLOCKED, MASTERDOWN,
 * LOADING: jq_sentinel_not_master), the connection is let go once
 * its replies are read: the next command asks the sentinels again. */
static void drop_if_demoted(jq_client_t *c) {
    if (c->demoted && jq_link_up(&c->link)) c->link.ctx->err = REDIS_ERR_OTHER;
}

redisReply *jq_client_run(jq_client_t *c, const jq_args_t *a, char *err, size_t errlen) {
    if (c->cl) return jq_cluster_run(c, a, err, errlen);
    recheck_sentinels(c);
    if (append(c, a, err, errlen) < 0) return NULL;
    redisReply *r = read_reply(c, err, errlen);
    if (r && c->demoted) {
        /* A master demoted under us: once more, on the one the sentinels
         * name now (one command, nothing half sent). */
        freeReplyObject(r);
        drop_if_demoted(c);
        if (append(c, a, err, errlen) < 0) return NULL;
        r = read_reply(c, err, errlen);
        drop_if_demoted(c);
    }
    if (r && jq_reply_ok(r, err, errlen) < 0) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int jq_client_do(jq_client_t *c, jq_args_t *a, char *err, size_t errlen) {
    redisReply *r = jq_client_run(c, a, err, errlen);
    jq_args_reset(a);
    if (!r) return -1;
    freeReplyObject(r);
    return 0;
}

redisReply *jq_client_range(jq_client_t *c, const char *cmd, const char *queue, const char *what,
                            const char *id, char *err, size_t errlen) {
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, cmd);
    jq_args_key(&a, c, queue, what, id);
    jq_args_str(&a, "0");
    jq_args_str(&a, "-1");
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    return r;
}

/* ---- pipelines ---- */

void jq_pipe_init(jq_pipe_t *p, jq_client_t *c) {
    recheck_sentinels(c); /* before anything is queued */
    memset(p, 0, sizeof(*p));
    p->c = c;
    jq_args_init(&p->a);
}

int jq_pipe_send(jq_pipe_t *p, char *err, size_t errlen) {
    /* A reconnect here, after a failure, would drop the commands already
     * queued on the old connection: once broken, send nothing more. In
     * cluster mode the pipe holds the commands until the first reply is
     * asked for, then routes them (cluster.c). */
    if (!p->broken &&
        (p->c->cl ? jq_cluster_hold(p, err, errlen) : append(p->c, &p->a, err, errlen)) < 0)
        p->broken = 1;
    jq_args_reset(&p->a);
    if (p->broken) return -1;
    p->sent++;
    return 0;
}

/* Writes what is queued, blocking until the socket took it all. Returns 0,
 * or -1 with err (the pipe is broken then). */
static int pipe_flush(jq_pipe_t *p, char *err, size_t errlen) {
    if (p->broken) return -1;
    redisContext *ctx = p->c->link.ctx;
    if (!ctx || sdslen(ctx->obuf) == 0) return 0;
    int done = 0, rc;
    if (p->c->link.session) {
        char why[256];
        rc = jq_tls_flush(p->c->link.session, ctx, why, sizeof(why));
        if (rc != 0)
            jq_seterr(err, errlen, "redis connection lost: %s", rc < 0 ? why : "timed out");
    } else {
        while ((rc = redisBufferWrite(ctx, &done)) == REDIS_OK && !done) continue;
        if (rc != REDIS_OK) jq_seterr(err, errlen, "redis connection lost: %s", ctx->errstr);
    }
    if (rc != 0) {
        if (!ctx->err) ctx->err = REDIS_ERR_IO;
        p->broken = 1;
        return -1;
    }
    return 0;
}

/* Vectors per writev: Linux's IOV_MAX. */
#define WRITEV_MAX 1024

/* writev of iov[0..n), all of it, on a blocking socket (whose send
 * timeout ends a stalled write with EAGAIN: an error here). */
static int writev_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        ssize_t w = writev(fd, iov, n < WRITEV_MAX ? n : WRITEV_MAX);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int jq_pipe_send_big(jq_pipe_t *p, char *err, size_t errlen) {
    if (p->c->cl || p->c->link.session || p->broken || p->a.oom || p->a.argc == 0) {
        /* TLS writes through the session: hiredis' buffer, emptied at once.
         * In cluster mode the pipe holds a copy until it is routed
         * (cluster.c); pipe_flush finds no link of the client's own then. */
        if (jq_pipe_send(p, err, errlen) < 0) return -1;
        return pipe_flush(p, err, errlen);
    }
    if (jq_client_ready(p->c, err, errlen) < 0 || pipe_flush(p, err, errlen) < 0) {
        p->broken = 1;
        jq_args_reset(&p->a);
        return -1;
    }
    const jq_args_t *a = &p->a;
    int n = 1 + 3 * a->argc;
    struct iovec *iov = malloc((size_t)n * sizeof(*iov));
    char *heads = malloc((size_t)(a->argc + 1) * 24);
    int rc = -1;
    if (iov && heads) {
        char *h = heads;
        int k = 0;
        iov[k++] = (struct iovec){h, (size_t)sprintf(h, "*%d\r\n", a->argc)};
        h += 24;
        for (int i = 0; i < a->argc; i++, h += 24) {
            iov[k++] = (struct iovec){h, (size_t)sprintf(h, "$%zu\r\n", a->lens[i])};
            iov[k++] = (struct iovec){(void *)a->argv[i], a->lens[i]};
            iov[k++] = (struct iovec){(void *)"\r\n", 2};
        }
        rc = writev_all(p->c->link.ctx->fd, iov, k);
        if (rc < 0)
            jq_seterr(err, errlen, "redis connection lost: %s",
                      errno == EAGAIN ? "write timed out" : strerror(errno));
    } else {
        jq_seterr(err, errlen, "out of memory building a redis command");
    }
    free(iov);
    free(heads);
    jq_args_reset(&p->a);
    if (rc < 0) {
        /* Half a command may be out: the connection cannot be used again. */
        if (!p->c->link.ctx->err) p->c->link.ctx->err = REDIS_ERR_IO;
        p->broken = 1;
        return -1;
    }
    p->sent++;
    return 0;
}

redisReply *jq_pipe_reply(jq_pipe_t *p, char *err, size_t errlen) {
    if (p->broken) return NULL;
    if (p->read == p->sent) {
        jq_seterr(err, errlen, "redis pipeline: no command left to read");
        p->broken = 1;
        return NULL;
    }
    redisReply *r = p->c->cl ? jq_cluster_reply(p, err, errlen) : read_reply(p->c, err, errlen);
    if (!r) {
        p->broken = 1;
        return NULL;
    }
    p->read++;
    return r;
}

int jq_pipe_end(jq_pipe_t *p) {
    jq_args_destroy(&p->a);
    if (p->c->cl) {
        jq_cluster_pipe_end(p);
        return p->broken ? -1 : 0;
    }
    redisContext *ctx = p->c->link.ctx;
    /* Replies left unread would answer the next call's commands. */
    if (p->read < p->sent && ctx && !ctx->err) ctx->err = REDIS_ERR_OTHER;
    drop_if_demoted(p->c);
    return p->broken ? -1 : 0;
}
