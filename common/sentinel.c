/* Asking Redis Sentinel where the master is. See sentinel.h. */

#include "sentinel.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static struct timeval ms_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Appends "; host:port: what" to err. */
static void note(char *err, size_t errlen, const jq_url_addr_t *s, const char *what) {
    size_t n = strlen(err);
    if (n + 1 < errlen)
        snprintf(err + n, errlen - n, "%s%s:%d: %s", n ? "; " : "", s->host, s->port, what);
}

/* 1 when an error reply is the sentinel turning us away for good (its
 * password), 0 for anything else (an outage). */
static int is_auth_error(const char *e) {
    return strncmp(e, "NOAUTH", 6) == 0 || strncmp(e, "WRONGPASS", 9) == 0 ||
           strncmp(e, "NOPERM", 6) == 0 || strstr(e, "invalid password") != NULL ||
           strstr(e, "invalid username-password") != NULL;
}

/* One command to a sentinel, over its TLS session s if any. */
static redisReply *command(redisContext *ctx, jq_tls_conn_t *s, const char *fmt, const char *arg) {
    void *r = NULL;
    if (redisAppendCommand(ctx, fmt, arg) != REDIS_OK) return NULL;
    if ((s ? jq_tls_sync_reply(s, ctx, &r) : redisGetReply(ctx, &r)) != REDIS_OK) return NULL;
    return r;
}

/* One sentinel. Returns 0 with *out, 1 when it refused (why), -1 when it
 * could not be asked (why). */
static int ask(const jq_url_t *u, jq_tls_t *tls, const jq_url_addr_t *s, int timeout_ms,
               jq_url_addr_t *out, char *why, size_t whylen) {
    redisContext *ctx = redisConnectWithTimeout(s->host, s->port, ms_tv(timeout_ms));
    jq_tls_conn_t *session = NULL;
    redisReply *r = NULL;
    int rc = -1;

    if (!ctx || ctx->err) {
        snprintf(why, whylen, "%s", ctx ? ctx->errstr : "out of memory");
        goto out;
    }
    fcntl(ctx->fd, F_SETFD, FD_CLOEXEC); /* hiredis leaves it inheritable */
    redisSetTimeout(ctx, ms_tv(timeout_ms));
    if (tls && !(session = jq_tls_sync_start(tls, ctx, s->host, why, whylen))) goto out;
    if (u->sentinel_password[0]) {
        r = command(ctx, session, "AUTH %s", u->sentinel_password);
        if (!r) {
            snprintf(why, whylen, "%s", ctx->errstr[0] ? ctx->errstr : "no answer");
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "AUTH refused: %s", r->str);
            rc = is_auth_error(r->str) ? 1 : -1;
            goto out;
        }
        freeReplyObject(r);
    }
    r = command(ctx, session, "SENTINEL get-master-addr-by-name %s", u->master_name);
    if (!r) {
        snprintf(why, whylen, "%s", ctx->errstr[0] ? ctx->errstr : "no answer");
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, whylen, "knows no master named '%s'", u->master_name);
        rc = 1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s", r->str);
        rc = is_auth_error(r->str) ? 1 : -1;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING ||
               r->element[0]->len >= sizeof(out->host) || atoi(r->element[1]->str) <= 0) {
        snprintf(why, whylen, "not a sentinel (its answer is not an address)");
    } else {
        snprintf(out->host, sizeof(out->host), "%s", r->element[0]->str);
        out->port = atoi(r->element[1]->str);
        rc = 0;
    }
out:
    if (r) freeReplyObject(r);
    jq_tls_conn_free(session);
    if (ctx) redisFree(ctx);
    return rc;
}

int jq_sentinel_resolve(const jq_url_t *u, jq_tls_t *tls, int timeout_ms, int *next,
                        jq_url_addr_t *out, char *err, size_t errlen) {
    int n = u->nsentinels, refused = 0, down = 0;
    if (errlen) err[0] = '\0';
    for (int k = 0; k < n; k++) {
        int i = ((*next % n) + n + k) % n;
        char why[192];
        int rc = ask(u, tls, &u->sentinels[i], timeout_ms, out, why, sizeof(why));
        if (rc == 0) {
            *next = i;
            if (errlen) err[0] = '\0';
            return 0;
        }
        rc > 0 ? refused++ : down++;
        note(err, errlen, &u->sentinels[i], why);
    }
    return refused > 0 && down == 0 ? JQ_SENTINEL_REFUSED : JQ_SENTINEL_DOWN;
}

int jq_sentinel_role_ok(const redisReply *r, char *why, size_t whylen) {
    if (r->type == REDIS_REPLY_ERROR) return 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        if (strcmp(r->element[0]->str, "master") == 0) return 1;
        snprintf(why, whylen, "says role %s, not master", r->element[0]->str);
        return 0;
    }
    snprintf(why, whylen, "answers ROLE with no role");
    return 0;
}

size_t jq_sentinel_not_master(const char *err, size_t len) {
    static const char *const codes[] = {"READONLY", "UNBLOCKED", "MASTERDOWN", "LOADING"};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        /* The code is the error's first word: "ERR READONLY" is no such. */
        if (len >= n && memcmp(err, codes[i], n) == 0 && (len == n || err[n] == ' ')) return n;
    }
    return 0;
}
