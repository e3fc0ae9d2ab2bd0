#ifndef JQ_HTTPD_H
#define JQ_HTTPD_H

/* A small HTTP/1.1 server on a libuv loop, for the master's /metrics,
 * /healthz and the web dashboard. Requests are parsed by Debian's
 * libhttp-parser; everything here is non-blocking and bounded, because
 * whatever reaches the port is hostile until proven otherwise:
 *
 *   - request line + headers: at most JQ_HTTPD_MAX_HEAD bytes (else 431),
 *     at most JQ_HTTPD_MAX_HEADERS headers, URL at most JQ_HTTPD_MAX_URL;
 *   - body: at most JQ_HTTPD_MAX_BODY bytes (else 413);
 *   - the request line and headers must arrive within JQ_HTTPD_HEAD_MS of
 *     the connection's accept, the whole request within JQ_HTTPD_TIMEOUT_MS
 *     (else 408 and close), and the response must be taken by the client
 *     within JQ_HTTPD_TIMEOUT_MS again (else the connection is closed);
 *   - at most JQ_HTTPD_MAX_CONNS connections at once, JQ_HTTPD_PER_ADDR of
 *     them from one client address; past either, a connection still
 *     waiting for its request gives way (503 and close), the one idle the
 *     longest, and JQ_HTTPD_RESERVED more slots serve only the path given
 *     to jq_httpd_reserve() when all are busy answering (httpd_admit.h);
 *     with no slot to give, the new connection gets 503 and is closed;
 *   - malformed input gets 400 and a closed connection.
 * One request per connection: every response carries "Connection: close".
 * Nothing about a request is logged (headers may carry an admin token).
 *
 * Routing: jq_httpd_route() registers method + path -> handler. A path
 * ending in '/' matches itself and everything under it ("/api/" matches
 * "/api/queues/x"); any other path matches only itself. Of the routes whose
 * path matches, the longest wins; a matching path with no route for the
 * method gets 405 (with Allow), no matching path 404. HEAD is served by the GET route
 * (the body is not sent).
 *
 * A handler answers with jq_httpd_respond(), at once or later from the same
 * loop (after a Redis reply, or a uv_queue_work), exactly once per request.
 * The request stays valid until then, even if the client went away or the
 * server timed out and closed the connection (then the response is
 * dropped). A handler that has not answered after JQ_HTTPD_TIMEOUT_MS makes
 * the server send 504 and close; its later jq_httpd_respond() only frees. */

#include <stddef.h>
#include <uv.h>

#define JQ_HTTPD_MAX_CONNS 64
#define JQ_HTTPD_MAX_HEAD 8192
#define JQ_HTTPD_MAX_HEADERS 32
#define JQ_HTTPD_MAX_URL 2048
#define JQ_HTTPD_MAX_BODY (64 * 1024)
#define JQ_HTTPD_HEAD_MS 2000
#define JQ_HTTPD_TIMEOUT_MS 10000

typedef struct jq_httpd jq_httpd_t;
typedef struct jq_http_req jq_http_req_t;

/* Handles one request; `data` is the pointer given to jq_httpd_route. */
typedef void (*jq_httpd_handler_fn)(jq_http_req_t *req, void *data);
typedef void (*jq_httpd_closed_fn)(void *data);

/* Starts listening on addr, "HOST:PORT" with a numeric IPv4 host
 * ("127.0.0.1:9100", "0.0.0.0:9100") or a bracketed IPv6 one
 * ("[::1]:9100"); port 0 picks a free port (see jq_httpd_port). Returns
 * the server, released by jq_httpd_close, or NULL with err. */
jq_httpd_t *jq_httpd_new(uv_loop_t *loop, const char *addr, char *err, size_t errlen);

/* The port listened on. */
int jq_httpd_port(const jq_httpd_t *s);

/* Adds a route. method: "GET", "POST", ... (NULL: any method); path as
 * above, copied. Returns 0, or -1 when the table (32 routes) is full. */
int jq_httpd_route(jq_httpd_t *s, const char *method, const char *path, jq_httpd_handler_fn fn,
                   void *data);

/* The one path (exact, e.g. "/healthz") that the reserved slots serve, so
 * that it answers while other clients hold every ordinary slot. A request
 * for another path in a reserved slot gets 503. Returns 0, or -1 for a
 * path that does not start with '/' or is over 255 bytes. */
int jq_httpd_reserve(jq_httpd_t *s, const char *path);

/* Stops listening and closes every connection. Requests still held by
 * handlers stay valid until answered. on_closed(data), if given, runs once
 * the server's own handles are closed; s is freed then. */
void jq_httpd_close(jq_httpd_t *s, jq_httpd_closed_fn on_closed, void *data);

/* ---- the request, valid until jq_httpd_respond ---- */

/* "GET", "POST", ... */
const char *jq_httpd_method(const jq_http_req_t *req);
/* The path of the URL, before any '?', as sent (not percent-decoded). */
const char *jq_httpd_path(const jq_http_req_t *req);
/* The query string after '?', "" when none (not decoded). */
const char *jq_httpd_query(const jq_http_req_t *req);
/* A header's value by name (case-insensitive); NULL when absent. The
 * first of repeated headers wins. */
const char *jq_httpd_header(const jq_http_req_t *req, const char *name);
/* The body (NUL-terminated for convenience); *len gets its length. */
const char *jq_httpd_body(const jq_http_req_t *req, size_t *len);

/* Adds a response header ("Location", "/"); before jq_httpd_respond. At
 * most 1 KiB of them; values with CR or LF are refused. Returns 0 or -1. */
int jq_httpd_add_header(jq_http_req_t *req, const char *name, const char *value);

/* Answers req with status, Content-Type (NULL: text/plain; charset=utf-8)
 * and body[0..len) (copied), then closes the connection once written.
 * Frees req: it must not be used afterwards. */
void jq_httpd_respond(jq_http_req_t *req, int status, const char *content_type, const char *body,
                      size_t len);

/* jq_httpd_respond with a NUL-terminated text body. */
void jq_httpd_respond_text(jq_http_req_t *req, int status, const char *text);

#endif
