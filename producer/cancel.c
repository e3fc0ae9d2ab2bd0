/* Cancelling a job (docs/PROTOCOL.md §11): the shared script
 * (common/cancel_lua.h) in `request` mode; when it finds no job by id, the stream is
 * scanned for an entry carrying that id (a ready job whose producer chose
 * its id), and only then is the request forced in. So `jobq cancel`
 * refuses an id that names no job instead of leaving a request no worker
 * will ever meet. */

#include <stdio.h>
#include <string.h>

#include "cancel_lua.h"
#include "client_int.h"

#define SCAN_PAGE 1000

/* Runs the script for one id in mode. Returns the answer string copied
 * into out, or -1. */
static int run_script(jq_client_t *c, const char *queue, const char *id, const char *mode,
                      char *out, size_t cap, char *err, size_t errlen) {
    char base[JQ_KEY_MAX];
    snprintf(base, sizeof(base), "%s:{%s}:", c->prefix, queue);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "EVAL");
    jq_args_str(&a, jq_cancel_lua);
    jq_args_str(&a, "4");
    jq_args_key(&a, c, queue, "cancel", NULL);
    jq_args_key(&a, c, queue, "scheduled", NULL);
    jq_args_key(&a, c, queue, "dead", NULL);
    jq_args_key(&a, c, queue, "stream", NULL);
    jq_args_str(&a, base);
    jq_args_str(&a, mode);
    jq_args_str(&a, "jobq cancel");
    jq_args_str(&a, "0");
    jq_args_str(&a, id);
    redisReply *r = jq_client_run(c, &a, err, errlen);
    jq_args_destroy(&a);
    if (!r) return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(out, cap, "%.*s", (int)r->element[0]->len, r->element[0]->str);
        rc = 0;
    } else {
        jq_seterr(err, errlen, "cancel: unexpected reply from redis");
    }
    freeReplyObject(r);
    return rc;
}

/* Whether an entry of r (an XRANGE reply) carries `id <id>`; *last gets
 * the last entry id of the page. Returns 1 found, 0 not. */
static int page_has(const redisReply *r, const char *id, char *last, size_t cap) {
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
        if (e->element[0]->type == REDIS_REPLY_STRING)
            snprintf(last, cap, "(%.*s", (int)e->element[0]->len, e->element[0]->str);
        const redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
            if (jq_reply_is(f->element[k], "id") && jq_reply_is(f->element[k + 1], id)) return 1;
    }
    return 0;
}

/* Looks for an entry whose `id` field is id, a page at a time (the
 * stream holds the ready and running jobs: acked ones leave it). Returns
 * 1 found, 0 not, -1 on a fault. */
static int scan_stream(jq_client_t *c, const char *queue, const char *id, char *err,
                       size_t errlen) {
    char from[64] = "-";
    for (;;) {
        jq_args_t a;
        jq_args_init(&a);
        jq_args_str(&a, "XRANGE");
        jq_args_key(&a, c, queue, "stream", NULL);
        jq_args_str(&a, from);
        jq_args_str(&a, "+");
        jq_args_str(&a, "COUNT");
        jq_args_ll(&a, SCAN_PAGE);
        redisReply *r = jq_client_run(c, &a, err, errlen);
        jq_args_destroy(&a);
        if (!r) return -1;
        int found = r->type == REDIS_REPLY_ARRAY && page_has(r, id, from, sizeof(from));
        int more = r->type == REDIS_REPLY_ARRAY && r->elements == SCAN_PAGE;
        freeReplyObject(r);
        if (found) return 1;
        if (!more) return 0;
    }
}

int jq_client_cancel(jq_client_t *c, const char *queue, const char *id, char *state, size_t cap,
                     char *err, size_t errlen) {
    if (jq_check_queue(&queue, id, err, errlen) < 0) return -1;
    if (run_script(c, queue, id, "request", state, cap, err, errlen) < 0) return -1;
    if (strcmp(state, "unknown") != 0) return 0;
    int found = scan_stream(c, queue, id, err, errlen);
    if (found < 0) return -1;
    if (!found) return JQ_CLIENT_ENOTFOUND;
    return run_script(c, queue, id, "force", state, cap, err, errlen);
}
