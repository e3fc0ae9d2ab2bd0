/* The fake connection of the stage tests. See fake_rconn.h. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/async.h>

#include "fake_rconn.h"

fake_cmd_t fake_cmds[FAKE_CMDS_MAX];
int fake_ncmds;

void fake_rconn_reset(void) {
    /* As when hiredis frees a connection: each pending callback gets NULL
     * (and frees what it carried). */
    for (int i = 0; i < fake_ncmds; i++)
        if (!fake_cmds[i].answered) fake_rconn_answer(i, NULL);
    for (int i = 0; i < fake_ncmds; i++) {
        for (int j = 0; j < fake_cmds[i].argc; j++) free(fake_cmds[i].argv[j]);
        free(fake_cmds[i].argv);
    }
    memset(fake_cmds, 0, sizeof(fake_cmds));
    fake_ncmds = 0;
}

int jq_rconn_args(jq_rconn_t *c, const jq_args_t *a, redisCallbackFn *fn, void *priv) {
    if (a->oom || !c->up || c->closing) return -1;
    if (fake_ncmds == FAKE_CMDS_MAX) abort();
    fake_cmd_t *cmd = &fake_cmds[fake_ncmds++];
    cmd->c = c;
    cmd->fn = fn;
    cmd->priv = priv;
    cmd->argc = a->argc;
    cmd->argv = calloc((size_t)a->argc, sizeof(char *));
    size_t off = 0;
    for (int i = 0; i < a->argc; i++) {
        size_t len = a->lens[i];
        cmd->argv[i] = malloc(len + 1);
        memcpy(cmd->argv[i], a->argv[i], len);
        cmd->argv[i][len] = '\0';
        int n =
            snprintf(cmd->line + off, sizeof(cmd->line) - off, "%s%s", i ? " " : "", cmd->argv[i]);
        if (n > 0 && off + (size_t)n < sizeof(cmd->line)) off += (size_t)n;
    }
    return 0;
}

int jq_rconn_args_ref(jq_rconn_t *c, const jq_args_t *a, int n_copy, redisCallbackFn *fn,
                      void *priv) {
    (void)n_copy; /* the bytes on the wire are the same */
    return jq_rconn_args(c, a, fn, priv);
}

static int matches(const fake_cmd_t *cmd, const jq_rconn_t *c, const char *prefix) {
    return (!c || cmd->c == c) && strncmp(cmd->line, prefix, strlen(prefix)) == 0;
}

int fake_rconn_find(const jq_rconn_t *c, const char *prefix) {
    for (int i = fake_ncmds - 1; i >= 0; i--)
        if (matches(&fake_cmds[i], c, prefix)) return i;
    return -1;
}

int fake_rconn_count(const jq_rconn_t *c, const char *prefix) {
    int n = 0;
    for (int i = 0; i < fake_ncmds; i++) n += matches(&fake_cmds[i], c, prefix);
    return n;
}

void fake_rconn_answer(int i, redisReply *reply) {
    fake_cmd_t *cmd = &fake_cmds[i];
    if (cmd->answered) abort(); /* a test bug: hiredis answers once */
    cmd->answered = 1;
    redisAsyncContext ac;
    memset(&ac, 0, sizeof(ac));
    ac.data = cmd->c;
    if (cmd->fn) cmd->fn(&ac, reply, cmd->priv);
    if (reply) freeReplyObject(reply);
}

static redisReply *reply_of(int type) {
    redisReply *r = calloc(1, sizeof(*r));
    if (!r) abort();
    r->type = type;
    return r;
}

static redisReply *text(int type, const char *s) {
    redisReply *r = reply_of(type);
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

redisReply *fake_str(const char *s) { return text(REDIS_REPLY_STRING, s); }
redisReply *fake_err(const char *s) { return text(REDIS_REPLY_ERROR, s); }
redisReply *fake_nil(void) { return reply_of(REDIS_REPLY_NIL); }

redisReply *fake_int(long long v) {
    redisReply *r = reply_of(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

redisReply *fake_arr(size_t n, ...) {
    redisReply *r = reply_of(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(redisReply *));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

redisReply *fake_fields(size_t n, ...) {
    redisReply *f = fake_arr(0);
    free(f->element);
    f->elements = n;
    f->element = calloc(n ? n : 1, sizeof(redisReply *));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) f->element[i] = fake_str(va_arg(ap, const char *));
    va_end(ap);
    return f;
}
