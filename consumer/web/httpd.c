/* The HTTP server of the master. See httpd.h for its limits and API.
 *
 * A connection goes READING -> HANDLING -> WRITING -> closed. One timer per
 * connection bounds each phase: the head (JQ_HTTPD_HEAD_MS from accept),
 * then the whole request, the handler and the write (JQ_HTTPD_TIMEOUT_MS
 * each). Who gets a slot is httpd_admit.c's decision; parsing is
 * httpd_req.c's. The request struct is the connection itself, freed only
 * when its handles are closed and no handler holds it any more. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd_conn.h"
#include "log.h"

#define ACCEPT_LOG_MS 10000 /* accept errors are logged at most once per this */
/* The kernel's queue of connections not yet accepted (Redis's tcp-backlog).
 * Under a flood of reconnecting clients a queue of 128 overflowed, and a
 * probe whose SYN was dropped waited the 1 s of its retransmission: the
 * queue costs nothing while empty, and the loop empties it at each turn. */
#define LISTEN_BACKLOG 511

/* ---- closing ---- */

static void maybe_free(jq_http_req_t *c) {
    if (c->handles == 0 && !c->held) {
        free(c->body);
        free(c->out);
        free(c);
    }
}

static void on_conn_handle_closed(uv_handle_t *h) {
    jq_http_req_t *c = h->data;
    c->handles--;
    maybe_free(c);
}

static void unlink_conn(jq_http_req_t *c) {
    jq_httpd_t *s = c->srv;
    if (!s) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    c->srv = NULL;
}

static void set_state(jq_http_req_t *c, jq_conn_state_t st) {
    c->state = st;
    c->slot.reading = st == ST_READING;
}

static void close_conn(jq_http_req_t *c) {
    if (c->state == ST_CLOSED) return;
    set_state(c, ST_CLOSED);
    unlink_conn(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* An answer of our own (an error, with extra header lines or ""), written
 * if the socket takes it at once, then the connection closes: a client
 * that does not read gets nothing. */
static void answer_with(jq_http_req_t *c, int status, const char *extra) {
    char buf[512];
    const char *why = jq_httpd_reason(status);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n",
                     status, why, strlen(why) + 1, extra, why);
    uv_buf_t b = uv_buf_init(buf, (unsigned)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
    /* A full socket buffer or a peer gone (a short count or an error): the
     * answer is lost, and the connection closes all the same. */
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    close_conn(c);
}

static void answer_and_close(jq_http_req_t *c, int status) { answer_with(c, status, ""); }

/* Bounds the connection's current phase: ms from now. A connection
 * without a deadline must not live: when the timer cannot start, it is
 * closed and 0 is not returned. */
static void on_conn_timeout(uv_timer_t *t);

static int arm(jq_http_req_t *c, uint64_t ms) {
    int rc = uv_timer_start(&c->timer, on_conn_timeout, ms, 0);
    if (rc == 0) return 0;
    jq_warn("http: cannot time a connection: %s", uv_strerror(rc));
    close_conn(c);
    return rc;
}

static void on_conn_timeout(uv_timer_t *t) {
    jq_http_req_t *c = t->data;
    if (c->state == ST_READING)
        answer_and_close(c, 408);
    else if (c->state == ST_HANDLING)
        answer_and_close(c, 504);
    else
        close_conn(c); /* WRITING: the client does not take its answer */
}

/* ---- dispatch ---- */

static const jq_route_t *find_route(jq_httpd_t *s, const char *method, const char *path,
                                    char *allow, size_t allow_len) {
    const jq_route_t *best = NULL;
    size_t plen = strlen(path), used = 0;
    allow[0] = '\0';
    for (int i = 0; i < s->nroutes; i++) {
        const jq_route_t *r = &s->routes[i];
        int match = r->subtree ? strncmp(path, r->path, r->len) == 0
                               : plen == r->len && memcmp(path, r->path, plen) == 0;
        if (!match) continue;
        if (r->method[0] && !strstr(allow, r->method) && used < allow_len)
            used += (size_t)snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
                                     r->method);
        int mok = !r->method[0] || strcmp(r->method, method) == 0 ||
                  (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
        if (mok && (!best || r->len > best->len)) best = r;
    }
    return best;
}

/* A path with routes but none for the method: 405, with the methods it
 * has (RFC 9110 asks for Allow), or 404 when no route has the path. */
static void answer_no_route(jq_http_req_t *c, const char *allow) {
    if (!allow[0]) {
        answer_and_close(c, 404);
        return;
    }
    char extra[160];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    answer_with(c, 405, extra);
}

static void dispatch(jq_http_req_t *c) {
    jq_httpd_t *s = c->srv;
    snprintf(c->method, sizeof(c->method), "%s", http_method_str(c->parser.method));
    c->url[c->url_len] = '\0';
    /* Origin-form only ("/path?query"): no absolute URLs, no CONNECT. */
    if (c->url[0] != '/') {
        answer_and_close(c, 400);
        return;
    }
    char *q = strchr(c->url, '?');
    if (q) *q++ = '\0';
    c->query = q ? q : c->url + c->url_len;
    /* A reserved slot serves its one path, and nothing else. */
    if (c->slot.reserved && strcmp(c->url, s->reserved_path) != 0) {
        answer_and_close(c, 503);
        return;
    }
    char allow[128];
    const jq_route_t *r = find_route(s, c->method, c->url, allow, sizeof(allow));
    if (!r) {
        answer_no_route(c, allow);
        return;
    }
    set_state(c, ST_HANDLING);
    if (arm(c, JQ_HTTPD_TIMEOUT_MS) != 0) return;
    c->held = 1;
    r->fn(c, r->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
    jq_http_req_t *c = h->data;
    *b = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

/* Once the head is in, the rest of the request has until
 * JQ_HTTPD_TIMEOUT_MS after the accept. */
static int arm_body(jq_http_req_t *c) {
    c->body_deadline = 1;
    uint64_t now = uv_now(c->tcp.loop), end = c->accepted_ms + JQ_HTTPD_TIMEOUT_MS;
    return arm(c, end > now ? end - now : 1);
}

static void on_conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
    jq_http_req_t *c = st->data;
    if (n == 0) return;
    if (n < 0) {
        /* EOF or an error before the request was whole: nothing to answer. */
        close_conn(c);
        return;
    }
    c->slot.last_ms = uv_now(st->loop);
    size_t done = http_parser_execute(&c->parser, &jq_httpd_parser_settings, b->base, (size_t)n);
    if (c->complete) {
        /* Paused at the end of the request: the rest of the bytes, a
         * second request, are never read. */
        int rc = uv_read_stop(st);
        if (rc != 0 || c->reject)
            answer_and_close(c, rc != 0 ? 500 : c->reject);
        else
            dispatch(c);
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK || done != (size_t)n) {
        answer_and_close(c, c->reject ? c->reject : e == HPE_HEADER_OVERFLOW ? 431 : 400);
        return;
    }
    if (c->headers_done && !c->body_deadline) arm_body(c);
}

/* ---- accepting ---- */

static void server_handle_closed(jq_httpd_t *s) {
    if (--s->handles > 0) return;
    if (s->on_closed) s->on_closed(s->closed_data);
    free(s);
}

static void on_spare_closed(uv_handle_t *h) {
    jq_httpd_t *s = h->data;
    s->spare_busy = 0;
    server_handle_closed(s);
}

/* Errors of accepting say nothing about a client, and may repeat at every
 * connection (no file descriptor left): logged once per ACCEPT_LOG_MS. */
static void accept_failed(jq_httpd_t *s, const char *what, int rc) {
    uint64_t now = uv_now(s->loop);
    if (s->accept_err_ms && now - s->accept_err_ms < ACCEPT_LOG_MS) return;
    s->accept_err_ms = now;
    jq_warn("http: %s: %s", what, uv_strerror(rc));
}

/* A connection we cannot serve is still taken, into the spare handle, and
 * closed: libuv accepts nothing more on a listener until its pending
 * connection is taken. */
static void refuse_pending(jq_httpd_t *s) {
    if (s->spare_busy) return; /* rare: the next accept takes it */
    int rc = uv_tcp_init(s->loop, &s->spare);
    if (rc != 0) {
        accept_failed(s, "cannot refuse a connection", rc);
        return;
    }
    s->spare.data = s;
    s->spare_busy = 1;
    s->handles++;
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->spare); /* closed either way */
    uv_close((uv_handle_t *)&s->spare, on_spare_closed);
}

static int peer_of(jq_http_req_t *c) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    if (rc != 0) return rc;
    jq_httpd_peer_t *p = &c->slot.peer;
    if (ss.ss_family == AF_INET6) {
        p->len = 16;
        memcpy(p->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    } else {
        p->len = 4;
        memcpy(p->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    }
    return 0;
}

/* The pending connection, accepted, with its peer and its timer; NULL
 * when it could not be (then it is closed, or refused). */
static jq_http_req_t *take(jq_httpd_t *s) {
    jq_http_req_t *c = calloc(1, sizeof(*c));
    int rc = c ? uv_tcp_init(s->loop, &c->tcp) : UV_ENOMEM;
    if (rc != 0) {
        free(c);
        accept_failed(s, "cannot take a connection", rc);
        refuse_pending(s);
        return NULL;
    }
    c->tcp.data = c;
    c->handles = 1;
    if ((rc = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp)) != 0 ||
        (rc = peer_of(c)) != 0 || (rc = uv_timer_init(s->loop, &c->timer)) != 0) {
        accept_failed(s, "cannot take a connection", rc);
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        return NULL;
    }
    c->timer.data = c;
    c->handles = 2;
    c->accepted_ms = c->slot.last_ms = uv_now(s->loop);
    c->slot.seq = ++s->accepts;
    set_state(c, ST_READING);
    return c;
}

/* httpd_admit.c's verdict for c (not yet linked), carried out: the
 * connection that gives way is closed with 503. Returns 0 when c is in. */
static int admit(jq_httpd_t *s, jq_http_req_t *c) {
    const jq_httpd_slot_t *slots[JQ_HTTPD_MAX_CONNS + JQ_HTTPD_RESERVED];
    jq_http_req_t *conns[JQ_HTTPD_MAX_CONNS + JQ_HTTPD_RESERVED];
    int n = 0, evict;
    for (jq_http_req_t *o = s->conns; o && n < (int)(sizeof(conns) / sizeof(conns[0]));
         o = o->next) {
        conns[n] = o;
        slots[n++] = &o->slot;
    }
    jq_httpd_verdict_t v = jq_httpd_admit(slots, n, &c->slot.peer, &evict);
    if (evict >= 0) answer_and_close(conns[evict], 503);
    c->slot.reserved = v == JQ_HTTPD_ADMIT_RESERVED;
    return v == JQ_HTTPD_REFUSE ? -1 : 0;
}

static void link_conn(jq_httpd_t *s, jq_http_req_t *c) {
    c->srv = s;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
}

static void on_accept(uv_stream_t *ls, int status) {
    jq_httpd_t *s = ls->data;
    if (status < 0) {
        accept_failed(s, "accept", status);
        return;
    }
    jq_http_req_t *c = take(s);
    if (!c) return;
    int refused = admit(s, c);
    link_conn(s, c);
    if (refused) {
        answer_and_close(c, 503);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (arm(c, JQ_HTTPD_HEAD_MS) != 0) return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_conn_read);
    if (rc != 0) {
        accept_failed(s, "cannot read a connection", rc);
        close_conn(c);
    }
}

/* ---- responding ---- */

static void on_written(uv_write_t *wr, int status) {
    /* Written or not (the client went away), the connection is done. */
    close_conn(wr->data);
}

void jq_httpd_respond(jq_http_req_t *c, int status, const char *ctype, const char *body,
                      size_t len) {
    c->held = 0;
    if (c->state != ST_HANDLING) {
        /* Timed out, or the server closed: the answer has nowhere to go. */
        maybe_free(c);
        return;
    }
    if (!ctype) ctype = "text/plain; charset=utf-8";
    char head[512 + JQ_HTTPD_MAX_EXTRA];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n%.*s\r\n",
                     status, jq_httpd_reason(status), ctype, len, (int)c->extra_len, c->extra);
    if (n < 0 || (size_t)n >= sizeof(head) || !(c->out = malloc((size_t)n + len))) {
        answer_and_close(c, 500);
        return;
    }
    memcpy(c->out, head, (size_t)n);
    if (len) memcpy(c->out + n, body, len);
    /* HEAD: the GET's headers, Content-Length included, without the body. */
    if (strcmp(c->method, "HEAD") == 0) len = 0;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)((size_t)n + len));
    set_state(c, ST_WRITING);
    c->wr.data = c;
    if (arm(c, JQ_HTTPD_TIMEOUT_MS) != 0) return;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) close_conn(c);
}

void jq_httpd_respond_text(jq_http_req_t *req, int status, const char *text) {
    jq_httpd_respond(req, status, NULL, text, strlen(text));
}

/* ---- the server ---- */

static int parse_addr(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen) {
    char host[64];
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hlen >= sizeof(host)) goto bad;
    if (h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']') goto bad;
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) goto bad;
    if (addr[0] == '[') {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0) goto bad;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0) {
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "bad address '%.100s': want HOST:PORT with a numeric host, e.g. 127.0.0.1:9100 or "
             "[::1]:9100",
             addr);
    return -1;
}

static void on_listener_closed(uv_handle_t *h) { server_handle_closed(h->data); }

static int bound_port(jq_httpd_t *s) {
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    int rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (rc != 0) return rc;
    s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

jq_httpd_t *jq_httpd_new(uv_loop_t *loop, const char *addr, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (parse_addr(addr, &ss, err, errlen) < 0) return NULL;
    jq_httpd_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    int rc = uv_tcp_init(loop, &s->listener);
    if (rc != 0) {
        snprintf(err, errlen, "%s", uv_strerror(rc));
        free(s);
        return NULL;
    }
    s->listener.data = s;
    s->handles = 1;
    /* The library's own cap (global, default 80 KiB) matches ours. */
    http_parser_set_max_header_size(JQ_HTTPD_MAX_HEAD);
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_accept);
    if (rc == 0) rc = bound_port(s);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return NULL;
    }
    return s;
}

int jq_httpd_port(const jq_httpd_t *s) { return s->port; }

int jq_httpd_route(jq_httpd_t *s, const char *method, const char *path, jq_httpd_handler_fn fn,
                   void *data) {
    if (s->nroutes == JQ_HTTPD_MAX_ROUTES || strlen(path) >= sizeof(s->routes[0].path) ||
        path[0] != '/')
        return -1;
    if (method && strlen(method) >= sizeof(s->routes[0].method)) return -1;
    jq_route_t *r = &s->routes[s->nroutes++];
    snprintf(r->method, sizeof(r->method), "%s", method ? method : "");
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->len = strlen(path);
    r->subtree = path[r->len - 1] == '/';
    r->fn = fn;
    r->data = data;
    return 0;
}

int jq_httpd_reserve(jq_httpd_t *s, const char *path) {
    if (strlen(path) >= sizeof(s->reserved_path) || path[0] != '/') return -1;
    snprintf(s->reserved_path, sizeof(s->reserved_path), "%s", path);
    return 0;
}

void jq_httpd_close(jq_httpd_t *s, jq_httpd_closed_fn on_closed, void *data) {
    s->on_closed = on_closed;
    s->closed_data = data;
    while (s->conns) close_conn(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
