#ifndef JQ_HTTPD_CONN_H
#define JQ_HTTPD_CONN_H

/* The HTTP server's own types, shared by its three files and nobody else:
 * httpd.c (the server, its connections and their deadlines), httpd_req.c
 * (parsing a request into a connection, and the request accessors) and
 * httpd_admit.c (which connection gives way when all slots are taken). */

#include <http_parser.h>
#include <stdint.h>

#include "httpd.h"
#include "httpd_admit.h"

#define JQ_HTTPD_MAX_ROUTES 32
#define JQ_HTTPD_MAX_EXTRA 1024 /* extra response headers of one request */

typedef struct jq_route {
    char method[16]; /* "" = any */
    char path[256];
    size_t len;
    int subtree; /* path ends in '/' */
    jq_httpd_handler_fn fn;
    void *data;
} jq_route_t;

struct jq_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t spare; /* takes a connection we cannot serve (out of memory) */
    int handles;    /* of listener and spare, not yet closed */
    int spare_busy;
    int port;
    jq_route_t routes[JQ_HTTPD_MAX_ROUTES];
    int nroutes;
    char reserved_path[256]; /* the path the reserved slots serve ("" none) */
    jq_http_req_t *conns;    /* open connections, for jq_httpd_close */
    int nconns;
    uint64_t accepts;       /* connections accepted so far (their seq) */
    uint64_t accept_err_ms; /* when an accept error was last logged */
    jq_httpd_closed_fn on_closed;
    void *closed_data;
};

typedef enum { ST_READING, ST_HANDLING, ST_WRITING, ST_CLOSED } jq_conn_state_t;

/* One connection and the one request it carries. */
struct jq_http_req {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    jq_httpd_t *srv; /* NULL once unlinked (closing) */
    jq_conn_state_t state;
    jq_httpd_slot_t slot; /* its peer, and how long it has been idle */
    uint64_t accepted_ms;
    int body_deadline; /* the timer now bounds the body, not the head */
    int handles;       /* handles not yet closed */
    int held;          /* a handler holds the request */
    http_parser parser;
    size_t head_bytes; /* URL + header bytes so far */
    int in_value;      /* the parser is inside a header value */
    char url[JQ_HTTPD_MAX_URL + 1];
    size_t url_len;
    char *query; /* into url, after the '?' */
    char method[16];
    char head[JQ_HTTPD_MAX_HEAD + JQ_HTTPD_MAX_HEADERS * 2]; /* names and values, NUL-ended */
    size_t head_len;
    size_t name_at[JQ_HTTPD_MAX_HEADERS], value_at[JQ_HTTPD_MAX_HEADERS];
    int nheaders;
    int headers_done, complete;
    int reject; /* status to answer instead of dispatching */
    char *body;
    size_t body_len;
    char extra[JQ_HTTPD_MAX_EXTRA]; /* extra response headers */
    size_t extra_len;
    char *out; /* the response being written */
    char readbuf[4096];
    jq_http_req_t *prev, *next;
};

/* The parser callbacks that fill a jq_http_req_t (parser.data points at it). */
extern const http_parser_settings jq_httpd_parser_settings;

/* The reason phrase of a status ("Not Found"), "Unknown" for others. */
const char *jq_httpd_reason(int status);

#endif
