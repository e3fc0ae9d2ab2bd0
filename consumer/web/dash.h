#ifndef JQ_DASH_H
#define JQ_DASH_H

/* The web dashboard's request handler (issue 11): turns one HTTP request,
 * parsed by the master's HTTP server, into one response. It serves
 *   - the page: index.html, app.js and app.css, compiled into the binary
 *     (consumer/web/, embedded at build time as dash_assets.c);
 *   - the JSON API under /api/ (dash_api.c, docs/API.md).
 * Reads are open to whoever reaches the address (it belongs on a private
 * network). Actions (POST) need the admin token, sent as
 * "Authorization: Bearer TOKEN" -- a header, never a cookie, so that
 * another site cannot make a browser send it -- and compared in constant
 * time; with no token configured the dashboard is read-only. The token is
 * never logged. Every response carries a Content-Security-Policy that
 * allows no inline script, and JSON never holds a raw '<', '>' or '&'.
 *
 * Threads: jq_dash_handle() blocks on Redis for API requests; run those
 * off the event loop, one at a time per jq_dash_t (dashsrv.c does). A
 * request for which jq_dash_needs_redis() is false touches nothing
 * mutable and may be answered on any thread, at once. */

#include <stddef.h>
#include <msgpack.h>

#include "options.h"

#define JQ_DASH_TOKEN_MIN JQ_ADMIN_TOKEN_MIN /* options.h: checked at start too */
#define JQ_DASH_TARGET_MAX 2048              /* longest request target (path and query) */
#define JQ_DASH_BODY_MAX 1024                /* longest body an action may carry */

typedef struct jq_dash jq_dash_t;

typedef struct jq_dash_req {
    const char *method; /* "GET", "POST", ... */
    const char *target; /* path and query, e.g. "/api/queues/q/dead?start=50" */
    const char *auth;   /* the Authorization header, or NULL */
    size_t body_len;    /* bytes of body sent with the request */
} jq_dash_req_t;

/* Headers every response carries, as name/value pairs, ending {NULL, NULL}
 * (beside httpd's own Cache-Control: no-store and X-Content-Type-Options:
 * nosniff). */
extern const char *const jq_dash_headers[][2];

typedef struct jq_dash_resp {
    int status;
    const char *content_type; /* static */
    const char *allow;        /* with 405: the Allow header, else NULL */
    const char *body;         /* an asset (static) or json.data */
    size_t body_len;
    msgpack_sbuffer json; /* owned: released by jq_dash_resp_destroy */
} jq_dash_resp_t;

/* Makes a handler that reads Redis at redis_url with key prefix `prefix`
 * (it connects on its first API request, and again after a fault), with
 * the TLS settings tls (borrowed, outlives the handler; NULL: none). token
 * NULL or "" means read-only; a shorter token than JQ_DASH_TOKEN_MIN is
 * refused. Only a digest of the token is kept. heartbeat_ms (the workers'
 * period) lets the page mark silent workers stale. Returns NULL with err. */
jq_dash_t *jq_dash_new(const char *redis_url, const jq_client_tls_t *tls, const char *prefix,
                       const char *token, long long heartbeat_ms, char *err, size_t errlen);
void jq_dash_free(jq_dash_t *d);

/* Whether the dashboard was given an admin token. */
int jq_dash_read_only(const jq_dash_t *d);

/* 1 when answering this request talks to Redis (an API path). */
int jq_dash_needs_redis(const char *target);

/* Answers req into *resp, which the caller releases with
 * jq_dash_resp_destroy() once the response is sent. */
void jq_dash_handle(jq_dash_t *d, const jq_dash_req_t *req, jq_dash_resp_t *resp);
void jq_dash_resp_destroy(jq_dash_resp_t *resp);

#endif
