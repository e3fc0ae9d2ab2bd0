/* The HTTP server of the master. See httpd.h for its limits and API.
 *
 * A connection goes READING -> HANDLING -> WRITING -> closed. One timer per
 * connection bounds each of the three phases; the request struct is the
 * connection itself, freed only when its handles are closed and no handler
 * holds it any more. */

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "log.h"

#define MAX_ROUTES 32
#define MAX_EXTRA 1024

typedef struct jq_route {
    char method[16];  /* "" = any */
    char path[256];
    size_t len;
    int subtree;      /* path ends in '/' */
    jq_httpd_handler_fn fn;
    void *data;
} jq_route_t;

struct jq_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    jq_route_t routes[MAX_ROUTES];
    int nroutes;
    jq_http_req_t *conns; /* open connections, for jq_httpd_close */
    int nconns;
    jq_httpd_closed_fn on_closed;
    void *closed_data;
};

typedef enum { ST_READING, ST_HANDLING, ST_WRITING, ST_CLOSED } jq_conn_state_t;

struct jq_http_req {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    jq_httpd_t *srv;          /* NULL once unlinked (closing) */
    jq_conn_state_t state;
    int handles;              /* handles not yet closed */
    int held;                 /* a handler holds the request */
    http_parser parser;
    size_t head_bytes;        /* URL + header bytes so far */
    int in_value;             /* the parser is inside a header value */
    char url[JQ_HTTPD_MAX_URL + 1];
    size_t url_len;
    char *query;              /* into url, after the '?' */
    char method[16];
    char head[JQ_HTTPD_MAX_HEAD + JQ_HTTPD_MAX_HEADERS * 2]; /* names and values, NUL-ended */
    size_t head_len;
    size_t name_at[JQ_HTTPD_MAX_HEADERS], value_at[JQ_HTTPD_MAX_HEADERS];
    int nheaders;
    int headers_done, complete;
    int reject;               /* status to answer instead of dispatching */
    char *body;
    size_t body_len;
    char extra[MAX_EXTRA];    /* extra response headers */
    size_t extra_len;
    char *out;                /* the response being written */
    char readbuf[4096];
    jq_http_req_t *prev, *next;
};

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

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
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    c->srv = NULL;
}

static void close_conn(jq_http_req_t *c) {
    if (c->state == ST_CLOSED) return;
    c->state = ST_CLOSED;
    unlink_conn(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* An answer of our own (an error), written if the socket takes it at once,
 * then the connection closes: a client that does not read gets nothing. */
static void answer_and_close(jq_http_req_t *c, int status) {
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     status, reason(status), strlen(reason(status)) + 1, reason(status));
    uv_buf_t b = uv_buf_init(buf, (unsigned)n);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    close_conn(c);
}

/* ---- parsing ---- */

static int head_append(jq_http_req_t *c, const char *at, size_t len) {
    c->head_bytes += len;
    if (c->head_len + len + 1 > sizeof(c->head) || c->head_bytes > JQ_HTTPD_MAX_HEAD) {
        c->reject = 431;
        return -1;
    }
    memcpy(c->head + c->head_len, at, len);
    c->head_len += len;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    c->head_bytes += len;
    if (c->url_len + len > JQ_HTTPD_MAX_URL) {
        c->reject = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->in_value || c->nheaders == 0) {
        /* A new header: end the previous value, start a name. */
        if (c->nheaders > 0 && head_append(c, "", 1) < 0) return -1;
        if (c->nheaders == JQ_HTTPD_MAX_HEADERS) {
            c->reject = 431;
            return -1;
        }
        c->name_at[c->nheaders] = c->head_len;
        c->value_at[c->nheaders] = (size_t)-1;
        c->nheaders++;
        c->in_value = 0;
    }
    return head_append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->nheaders == 0) return -1;
    if (!c->in_value) {
        if (head_append(c, "", 1) < 0) return -1;
        c->value_at[c->nheaders - 1] = c->head_len;
        c->in_value = 1;
    }
    return head_append(c, at, len);
}

static int on_headers_complete(http_parser *p) {
    jq_http_req_t *c = p->data;
    if (c->nheaders > 0 && head_append(c, "", 1) < 0) return -1;
    /* A header with no value at all still gets one, empty. */
    for (int i = 0; i < c->nheaders; i++)
        if (c->value_at[i] == (size_t)-1) c->value_at[i] = c->head_len - 1;
    c->headers_done = 1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > JQ_HTTPD_MAX_BODY) {
        c->reject = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->body_len + len > JQ_HTTPD_MAX_BODY) {
        c->reject = 413;
        return -1;
    }
    char *b = realloc(c->body, c->body_len + len + 1);
    if (!b) {
        c->reject = 500;
        return -1;
    }
    memcpy(b + c->body_len, at, len);
    c->body = b;
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p) {
    jq_http_req_t *c = p->data;
    c->complete = 1;
    http_parser_pause(p, 1); /* one request per connection: ignore the rest */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- dispatch ---- */

static const jq_route_t *find_route(jq_httpd_t *s, const char *method, const char *path,
                                    int *path_known) {
    const jq_route_t *best = NULL;
    *path_known = 0;
    size_t plen = strlen(path);
    for (int i = 0; i < s->nroutes; i++) {
        const jq_route_t *r = &s->routes[i];
        int match = r->subtree ? strncmp(path, r->path, r->len) == 0
                               : plen == r->len && memcmp(path, r->path, plen) == 0;
        if (!match) continue;
        *path_known = 1;
        int mok = !r->method[0] || strcmp(r->method, method) == 0 ||
                  (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
        if (mok && (!best || r->len > best->len)) best = r;
    }
    return best;
}

static void dispatch(jq_http_req_t *c) {
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
    int known;
    const jq_route_t *r = find_route(c->srv, c->method, c->url, &known);
    if (!r) {
        answer_and_close(c, known ? 405 : 404);
        return;
    }
    c->state = ST_HANDLING;
    c->held = 1;
    uv_timer_again(&c->timer);
    r->fn(c, r->data);
}

static void on_conn_timeout(uv_timer_t *t) {
    jq_http_req_t *c = t->data;
    if (c->state == ST_READING) answer_and_close(c, 408);
    else if (c->state == ST_HANDLING) answer_and_close(c, 504);
    else close_conn(c); /* WRITING: the client does not take its answer */
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
    jq_http_req_t *c = h->data;
    *b = uv_buf_init(c->readbuf, sizeof(c->readbuf));
}

static void on_conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
    jq_http_req_t *c = st->data;
    if (n == 0) return;
    if (n < 0) {
        /* EOF or an error before the request was whole: nothing to answer. */
        close_conn(c);
        return;
    }
    http_parser_execute(&c->parser, &parser_settings, b->base, (size_t)n);
    if (c->complete) {
        uv_read_stop(st);
        if (c->reject) answer_and_close(c, c->reject);
        else dispatch(c);
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK)
        answer_and_close(c, c->reject ? c->reject : e == HPE_HEADER_OVERFLOW ? 431 : 400);
}

static void on_accept(uv_stream_t *ls, int status) {
    jq_httpd_t *s = ls->data;
    if (status < 0) return;
    jq_http_req_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->handles = 1;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    c->srv = s;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (s->nconns > JQ_HTTPD_MAX_CONNS) {
        answer_and_close(c, 503);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_conn_timeout, JQ_HTTPD_TIMEOUT_MS, JQ_HTTPD_TIMEOUT_MS);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_conn_read) != 0) close_conn(c);
}

/* ---- responding ---- */

static void on_written(uv_write_t *wr, int status) {
    jq_http_req_t *c = wr->data;
    close_conn(c);
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
    char head[512 + MAX_EXTRA];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n%.*s\r\n",
                     status, reason(status), ctype, len, (int)c->extra_len, c->extra);
    if (n < 0 || (size_t)n >= sizeof(head) || !(c->out = malloc((size_t)n + len))) {
        answer_and_close(c, 500);
        return;
    }
    memcpy(c->out, head, (size_t)n);
    if (len) memcpy(c->out + n, body, len);
    /* HEAD: the GET's headers, Content-Length included, without the body. */
    if (strcmp(c->method, "HEAD") == 0) len = 0;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)((size_t)n + len));
    c->state = ST_WRITING;
    c->wr.data = c;
    uv_timer_again(&c->timer);
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) close_conn(c);
}

void jq_httpd_respond_text(jq_http_req_t *req, int status, const char *text) {
    jq_httpd_respond(req, status, NULL, text, strlen(text));
}

int jq_httpd_add_header(jq_http_req_t *c, const char *name, const char *value) {
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return -1;
    size_t need = strlen(name) + strlen(value) + 4;
    if (c->extra_len + need >= sizeof(c->extra)) return -1;
    c->extra_len += (size_t)snprintf(c->extra + c->extra_len, sizeof(c->extra) - c->extra_len,
                                     "%s: %s\r\n", name, value);
    return 0;
}

/* ---- request accessors ---- */

const char *jq_httpd_method(const jq_http_req_t *c) { return c->method; }
const char *jq_httpd_path(const jq_http_req_t *c) { return c->url; }
const char *jq_httpd_query(const jq_http_req_t *c) { return c->query; }

const char *jq_httpd_header(const jq_http_req_t *c, const char *name) {
    for (int i = 0; i < c->nheaders; i++)
        if (strcasecmp(c->head + c->name_at[i], name) == 0) return c->head + c->value_at[i];
    return NULL;
}

const char *jq_httpd_body(const jq_http_req_t *c, size_t *len) {
    if (len) *len = c->body_len;
    return c->body ? c->body : "";
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
    snprintf(err, errlen, "bad address '%.100s': want HOST:PORT with a numeric host, e.g. 127.0.0.1:9100 or [::1]:9100",
             addr);
    return -1;
}

static void on_listener_closed(uv_handle_t *h) {
    jq_httpd_t *s = h->data;
    if (s->on_closed) s->on_closed(s->closed_data);
    free(s);
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
    /* The library's own cap (global, default 80 KiB) matches ours. */
    http_parser_set_max_header_size(JQ_HTTPD_MAX_HEAD);
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 128, on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return s;
}

int jq_httpd_port(const jq_httpd_t *s) { return s->port; }

int jq_httpd_route(jq_httpd_t *s, const char *method, const char *path, jq_httpd_handler_fn fn,
                   void *data) {
    if (s->nroutes == MAX_ROUTES || strlen(path) >= sizeof(s->routes[0].path) || path[0] != '/')
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

void jq_httpd_close(jq_httpd_t *s, jq_httpd_closed_fn on_closed, void *data) {
    s->on_closed = on_closed;
    s->closed_data = data;
    while (s->conns) close_conn(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
