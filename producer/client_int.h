#ifndef JQ_CLIENT_INT_H
#define JQ_CLIENT_INT_H

/* Internals shared by the files of libjobq (jobq.c, wait.c, dead.c,
 * admin.c): the client struct, an argv builder and the command helpers.
 * Not installed; users include <jobq/jobq.h> only. */

#include <stddef.h>
#include <hiredis.h>

#include "jobq/jobq.h"
#include "keys.h"
#include "url.h"

struct jq_client {
    redisContext *ctx; /* NULL or broken (ctx->err) until jq_client_ready */
    jq_url_t url;
    char prefix[JQ_CLIENT_ID_LEN];
    long long timeout_ms; /* jq_client_set_timeout; 0: the defaults */
};

/* A command under construction. Strings added with jq_args_add are
 * borrowed and must outlive the command's sending; the others are copied
 * and freed by jq_args_destroy. Out of memory is remembered in `oom` and
 * reported when the command is sent, so callers add without checking. */
typedef struct jq_args {
    const char **argv;
    size_t *lens;
    int argc, cap;
    char **owned;
    int nowned, owned_cap;
    int oom;
} jq_args_t;

void jq_args_init(jq_args_t *a);
void jq_args_destroy(jq_args_t *a);
/* Drops the arguments (keeps the memory) so a builder serves many commands. */
void jq_args_reset(jq_args_t *a);
void jq_args_add(jq_args_t *a, const char *s, size_t len);
void jq_args_str(jq_args_t *a, const char *s);
void jq_args_dup(jq_args_t *a, const char *s, size_t len);
void jq_args_ll(jq_args_t *a, long long v);
/* Copies the key "<prefix>:{<queue>}:<what>" or, with id, ":<what>:<id>". */
void jq_args_key(jq_args_t *a, const jq_client_t *c, const char *queue,
                 const char *what, const char *id);

/* Sets err (if not NULL) like snprintf. */
void jq_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks a queue name or job id; `what` names it in the message. */
int jq_check_name(const char *what, const char *s, char *err, size_t errlen);

/* Reconnects if the connection is absent or broken. Returns 0 or -1. */
int jq_client_ready(jq_client_t *c, char *err, size_t errlen);

/* Sends one command and reads its reply. Returns the reply (the caller
 * frees it with freeReplyObject), or NULL with err on an I/O fault or an
 * error reply. */
redisReply *jq_client_run(jq_client_t *c, const jq_args_t *a, char *err,
                          size_t errlen);

/* Pipelining: queue commands with jq_client_append, then read one reply
 * per command with jq_client_reply, in order. A reply may be an error
 * reply (check with jq_reply_ok); NULL means the connection broke. */
int jq_client_append(jq_client_t *c, const jq_args_t *a, char *err,
                     size_t errlen);
redisReply *jq_client_reply(jq_client_t *c, char *err, size_t errlen);

/* The figures of one queue (admin.c), split so that watch.c can pipeline
 * many queues: append its commands, then collect their replies in order.
 * A failed append leaves the pipeline unusable: mark the connection broken
 * (c->ctx->err) so the next call reconnects. */
int jq_stats_append(jq_client_t *c, const char *queue, char *err, size_t errlen);
int jq_stats_collect(jq_client_t *c, const char *queue, jq_queue_stats_t *s, char *err,
                     size_t errlen);

/* 0 if r is not NULL and not an error reply, else -1 with err. */
int jq_reply_ok(const redisReply *r, char *err, size_t errlen);

/* Parses a string or integer reply as a long long. Returns 0 or -1. */
int jq_reply_ll(const redisReply *r, long long *out);

#endif
