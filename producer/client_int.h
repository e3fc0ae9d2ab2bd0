#ifndef JQ_CLIENT_INT_H
#define JQ_CLIENT_INT_H

/* Internals shared by the files of libjobq (jobq.c, wait.c, dead.c,
 * admin.c): the client struct, the key helper of the argv builder
 * (common/args.h) and the command helpers.
 * Not installed; users include <jobq/jobq.h> only. */

#include <stddef.h>
#include <hiredis.h>

#include "args.h"
#include "jobq/jobq.h"
#include "keys.h"
#include "url.h"

struct jq_client {
    redisContext *ctx; /* NULL or broken (ctx->err) until jq_client_ready */
    jq_url_t url;
    char prefix[JQ_CLIENT_ID_LEN];
    long long timeout_ms; /* jq_client_set_timeout; 0: the defaults */
};

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
