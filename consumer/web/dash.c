/* The dashboard's request handler: see dash.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"
#include "cryptosym.h"
#include "dash.h"
#include "dash_api.h"
#include "dash_assets.h"
#include "job.h"
#include "jobq/jobq.h"
#include "log.h"

#define MAX_SEGS 6
#define DENIED_LOG_MS 10000   /* refused actions are logged once per this */
#define REDIS_TIMEOUT_MS 4000 /* per Redis command (httpd gives 10 s per request) */

struct jq_dash {
    char url[1024];
    const jq_client_tls_t *tls; /* borrowed */
    char prefix[JQ_CLIENT_ID_LEN];
    jq_client_t *client; /* NULL until the first API request succeeds */
    int has_token;
    unsigned char token_md[32]; /* SHA-256 of the token */
    long long heartbeat_ms;
    long long denied; /* refused actions not yet logged */
    long long denied_logged_ms;
};

/* No inline script or style, nothing from another origin, no framing. */
const char *const jq_dash_headers[][2] = {
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {NULL, NULL},
};

/* SHA-256 of s: both sides of a comparison are digests of one length, so
 * the comparison's time says nothing about the token's length either. */
static int digest(const char *s, size_t len, unsigned char md[32]) {
    unsigned int n = 0;
    return EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : -1;
}

jq_dash_t *jq_dash_new(const char *redis_url, const jq_client_tls_t *tls, const char *prefix,
                       const char *token, long long heartbeat_ms, char *err, size_t errlen) {
    jq_dash_t *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(d->url, sizeof(d->url), "%s", redis_url);
    d->tls = tls;
    snprintf(d->prefix, sizeof(d->prefix), "%s", prefix);
    d->heartbeat_ms = heartbeat_ms;
    if (token && *token) {
        if (strlen(token) < JQ_DASH_TOKEN_MIN) {
            snprintf(err, errlen, "--admin-token: at least %d characters", JQ_DASH_TOKEN_MIN);
            goto err;
        }
        /* libcrypto is loaded only here, where a token needs it. */
        char why[256];
        if (jq_crypto_load(why, sizeof why) != 0) {
            snprintf(err, errlen, "--admin-token: cannot hash it: %s", why);
            goto err;
        }
        if (digest(token, strlen(token), d->token_md) < 0) {
            snprintf(err, errlen, "--admin-token: cannot hash it (OpenSSL)");
            goto err;
        }
        d->has_token = 1;
    }
    return d;
err:
    free(d);
    return NULL;
}

void jq_dash_free(jq_dash_t *d) {
    if (!d) return;
    jq_client_free(d->client);
    explicit_bzero(d, sizeof(*d)); /* the token's digest; libc's, as libcrypto may not be loaded */
    free(d);
}

int jq_dash_read_only(const jq_dash_t *d) { return !d->has_token; }

int jq_dash_needs_redis(const char *target) { return strncmp(target, "/api/", 5) == 0; }

void jq_dash_resp_destroy(jq_dash_resp_t *resp) {
    msgpack_sbuffer_destroy(&resp->json);
    memset(resp, 0, sizeof(*resp));
}

/* ---- responses ---- */

static void json_resp(jq_dash_resp_t *resp, int status) {
    resp->status = status;
    resp->content_type = "application/json; charset=utf-8";
    resp->body = resp->json.data ? resp->json.data : "";
    resp->body_len = resp->json.size;
}

static void error_resp(jq_dash_resp_t *resp, int status, const char *msg) {
    resp->json.size = 0;
    json_resp(resp, jq_dash_api_error(&resp->json, status, msg));
}

/* '<', '>' and '&' appear in JSON only inside strings, where \u003c and
 * friends mean the same: rewritten so, no job's text can ever be read as
 * markup, even by a client that sniffs. */
static int html_safe(msgpack_sbuffer *sb) {
    size_t extra = 0;
    for (size_t i = 0; i < sb->size; i++)
        if (sb->data[i] == '<' || sb->data[i] == '>' || sb->data[i] == '&') extra += 5;
    if (!extra) return 0;
    char *out = malloc(sb->size + extra + 1); /* + snprintf's NUL */
    if (!out) return -1;
    size_t o = 0;
    for (size_t i = 0; i < sb->size; i++) {
        char c = sb->data[i];
        if (c == '<' || c == '>' || c == '&') {
            snprintf(out + o, 7, "\\u%04x", (unsigned)c);
            o += 6;
        } else {
            out[o++] = c;
        }
    }
    free(sb->data);
    sb->data = out;
    sb->size = sb->alloc = o;
    return 0;
}

static void serve_asset(const char *path, jq_dash_resp_t *resp) {
    if (!strcmp(path, "/")) path = "/index.html";
    for (const jq_dash_asset_t *a = jq_dash_assets; a->path; a++) {
        if (strcmp(a->path, path)) continue;
        resp->status = 200;
        resp->content_type = a->type;
        resp->body = (const char *)a->data;
        resp->body_len = a->len;
        return;
    }
    error_resp(resp, 404, "not found");
}

/* ---- actions: who may ---- */

/* 0 when the request carries the token; else the status of the refusal. */
static int check_token(jq_dash_t *d, const char *auth, jq_dash_resp_t *resp) {
    if (!d->has_token) {
        error_resp(resp, 403,
                   "read-only: the consumer was started without --admin-token "
                   "(env JOBQ_ADMIN_TOKEN), so the dashboard takes no actions");
        return 403;
    }
    unsigned char md[32];
    const char *tok = auth && !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : NULL;
    if (tok && digest(tok, strlen(tok), md) == 0 && CRYPTO_memcmp(md, d->token_md, 32) == 0)
        return 0;
    /* Never the token itself; and at most one line per DENIED_LOG_MS, so
     * that a client guessing cannot flood the log. */
    long long now = jq_now_ms();
    d->denied++;
    if (now - d->denied_logged_ms >= DENIED_LOG_MS) {
        jq_warn("dashboard: refused %lld action%s without a valid admin token", d->denied,
                d->denied == 1 ? "" : "s");
        d->denied = 0;
        d->denied_logged_ms = now;
    }
    error_resp(resp, 401,
               "this action needs the admin token, sent as the header "
               "'Authorization: Bearer TOKEN'");
    return 401;
}

/* ---- the API ---- */

/* Splits "a/b/c" (a copy in buf) into seg; -1 on an empty segment or
 * too many. */
static int split(char *buf, char **seg) {
    int n = 0;
    for (char *p = buf;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        if (!*p || n == MAX_SEGS) return -1;
        seg[n++] = p;
        if (!slash) return n;
        p = slash + 1;
    }
}

static void log_action(char **seg, int nseg) {
    if (nseg == 3)
        jq_info("dashboard: %s queue %s", seg[2], seg[1]);
    else if (nseg == 4)
        jq_info("dashboard: retry all dead jobs of queue %s", seg[1]);
    else if (!strcmp(seg[2], "jobs"))
        jq_info("dashboard: cancel job %s of queue %s", seg[3], seg[1]);
    else
        jq_info("dashboard: %s dead job %s of queue %s", seg[4], seg[3], seg[1]);
}

static void serve_api(jq_dash_t *d, const jq_dash_req_t *req, const char *path, const char *query,
                      jq_dash_resp_t *resp) {
    char buf[JQ_DASH_TARGET_MAX + 1];
    char *seg[MAX_SEGS];
    snprintf(buf, sizeof(buf), "%s", path + 5);
    int nseg = split(buf, seg);
    if (nseg < 0) {
        error_resp(resp, 404, "no such API path");
        return;
    }
    /* The method before the token: a GET on an action is 405, whoever asks. */
    static const char *const allow[] = {NULL, "GET", "POST", "GET, POST"};
    int methods = jq_dash_api_methods(seg, nseg);
    int post = !strcmp(req->method, "POST");
    int want = post ? JQ_DASH_API_POST : !strcmp(req->method, "GET") ? JQ_DASH_API_GET : 0;
    if (!methods) {
        error_resp(resp, 404, "no such API path");
        return;
    }
    if (!(methods & want)) {
        error_resp(resp, 405, "method not allowed");
        resp->allow = allow[methods];
        return;
    }
    if (post && check_token(d, req->auth, resp)) return;
    if (post && req->body_len > JQ_DASH_BODY_MAX) {
        error_resp(resp, 413, "an action takes no body");
        return;
    }
    char err[JQ_ERR_LEN];
    if (!d->client) {
        if (!(d->client = jq_client_new_tls(d->url, d->prefix, d->tls, err, sizeof(err)))) {
            char msg[JQ_ERR_LEN + 16];
            snprintf(msg, sizeof(msg), "redis: %s", err);
            error_resp(resp, 503, msg);
            return;
        }
        /* A hung Redis fails a request well within httpd's time limit,
         * instead of holding the dashboard's thread for libjobq's 30 s. */
        jq_client_set_timeout(d->client, REDIS_TIMEOUT_MS);
    }
    jq_dash_info_t info = {!d->has_token, d->heartbeat_ms};
    int status = post ? jq_dash_api_post(d->client, seg, nseg, &resp->json)
                      : jq_dash_api_get(d->client, seg, nseg, query, &info, &resp->json);
    if (post && status == 200) log_action(seg, nseg);
    if (html_safe(&resp->json) < 0) {
        error_resp(resp, 500, "out of memory");
        return;
    }
    json_resp(resp, status);
}

void jq_dash_handle(jq_dash_t *d, const jq_dash_req_t *req, jq_dash_resp_t *resp) {
    memset(resp, 0, sizeof(*resp));
    msgpack_sbuffer_init(&resp->json);
    const char *target = req->target ? req->target : "";
    size_t tlen = strlen(target);
    if (tlen > JQ_DASH_TARGET_MAX || target[0] != '/') {
        error_resp(resp, tlen > JQ_DASH_TARGET_MAX ? 414 : 400, "bad request target");
        return;
    }
    char path[JQ_DASH_TARGET_MAX + 1];
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : tlen;
    memcpy(path, target, plen);
    path[plen] = '\0';
    int api = jq_dash_needs_redis(path);
    if (!api && strcmp(req->method, "GET")) {
        error_resp(resp, 405, "method not allowed");
        resp->allow = "GET";
        return;
    }
    if (api)
        serve_api(d, req, path, q ? q + 1 : NULL, resp);
    else
        serve_asset(path, resp);
}
