#ifndef JQ_CLIENT_INT_H
#define JQ_CLIENT_INT_H

/* Internals shared by the files of libjobq (jobq.c, wait.c, dead.c,
 * admin.c, watch.c), all written in conn.c: the client struct, the key
 * helpers of the argv builder (common/args.h), the two ways a command is
 * sent (jq_client_run for one, jq_pipe_t for a pipeline) and the readers
 * of their replies. Not installed; users include <jobq/jobq.h> only. */

#include <stddef.h>
#include <hiredis.h>

#include "args.h"
#include "jobq/jobq.h"
#include "keys.h"
#include "tls.h"
#include "url.h"

/* One connection to one server. */
typedef struct jq_link {
    redisContext *ctx;      /* NULL or broken (ctx->err) until reconnected */
    jq_tls_conn_t *session; /* rediss://: ctx's TLS session; hiredis formats the
                               commands and reads the replies, the bytes go
                               through the session (conn.c) */
} jq_link_t;

struct jq_cluster; /* cluster.c: the slot map and a link per master */

struct jq_client {
    jq_link_t link; /* the one server's; unused in cluster mode */
    jq_url_t url;
    jq_tls_t *tls;         /* rediss://: the settings, for every reconnection */
    struct jq_cluster *cl; /* NULL unless the URL or the server said cluster */
    char prefix[JQ_CLIENT_ID_LEN];
    long long timeout_ms; /* jq_client_set_timeout; 0: the defaults */
    int next_sentinel;    /* redis+sentinel://: the one to ask first */
    int demoted;          /* a READONLY (UNBLOCKED...) reply came: the master the
                             sentinels named is one no more (conn.c) */
    jq_url_addr_t master; /* redis+sentinel://: where ctx is connected */
    long long checked_ms; /* when the sentinels were last asked (monotonic) */
};

/* Copies the key "<prefix>:{<queue>}:<what>" or, with id, ":<what>:<id>". */
void jq_args_key(jq_args_t *a, const jq_client_t *c, const char *queue, const char *what,
                 const char *id);

/* Adds "DEL" and the keys of a run's result and wake-up (result:<id>,
 * result:<id>:chunks, notify:<id>): what must go before a job id is
 * run again, so that its waiter does not read the last run's answer. */
void jq_args_del_result(jq_args_t *a, const jq_client_t *c, const char *queue, const char *id);

/* A malloc'd copy of s[0..len) with a NUL after it (s may hold NULs);
 * NULL when out of memory. */
char *jq_memdup(const char *s, size_t len);

/* Sets err (if not NULL) like snprintf. */
void jq_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks a queue name or job id; `what` names it in the message. */
int jq_check_name(const char *what, const char *s, char *err, size_t errlen);

/* The queue a call names (NULL: the default, stored back in *queue) and
 * its job id, if any, checked as jq_check_name does. Returns 0 or -1. */
int jq_check_queue(const char **queue, const char *id, char *err, size_t errlen);

/* Connects link to addr (where names it in messages): TCP within the
 * connect timeout, TLS and AUTH as c's URL says, then c's command
 * timeout. Returns 0, or -1 with err and link left closed. */
int jq_link_open(jq_client_t *c, jq_link_t *link, const jq_url_addr_t *addr, const char *where,
                 char *err, size_t errlen);
/* Closes link (nothing if closed). */
void jq_link_close(jq_link_t *link);
/* Whether link is connected and sound. */
static inline int jq_link_up(const jq_link_t *link) { return link->ctx && !link->ctx->err; }
/* Queues a command on link (no I/O yet; written by the next read).
 * Returns 0, or -1 with err. */
int jq_link_append(jq_link_t *link, int argc, const char **argv, const size_t *lens, char *err,
                   size_t errlen);
/* The next reply on link, or NULL with err, the link then marked broken. */
redisReply *jq_link_read(jq_link_t *link, char *err, size_t errlen);
/* Applies c's command timeout to link. */
void jq_link_timeout(const jq_client_t *c, jq_link_t *link);

/* Reconnects if the connection is absent or broken. Returns 0 or -1. */
int jq_client_ready(jq_client_t *c, char *err, size_t errlen);

/* Sends one command and reads its reply. Returns the reply (the caller
 * frees it with freeReplyObject), or NULL with err on an I/O fault or an
 * error reply. */
redisReply *jq_client_run(jq_client_t *c, const jq_args_t *a, char *err, size_t errlen);

/* jq_client_run for a command whose reply is not needed: frees the reply
 * and resets a. Returns 0, or -1 with err. */
int jq_client_do(jq_client_t *c, jq_args_t *a, char *err, size_t errlen);

/* "<cmd> <key> 0 -1" (the key as jq_args_key builds it): a whole list
 * with LRANGE, a whole sorted set with ZRANGE; returns as jq_client_run. */
redisReply *jq_client_range(jq_client_t *c, const char *cmd, const char *queue, const char *what,
                            const char *id, char *err, size_t errlen);

/* A pipeline: build each command in p->a, queue it with jq_pipe_send,
 * then read one reply per command with jq_pipe_reply, in order. This is
 * the one place that knows a pipeline can be half sent: after a failed
 * send the pipe sends nothing more and reads nothing, and jq_pipe_end
 * marks the connection broken (the next call reconnects) whenever replies
 * were left unread, so no later call can read a reply meant for this one.
 * Commands go in only through the pipe or jq_client_run. */
typedef struct jq_pipe {
    jq_client_t *c;
    jq_args_t a;         /* the next command; jq_pipe_send resets it */
    size_t sent;         /* commands queued */
    size_t read;         /* replies read */
    int broken;          /* a send failed or the connection was lost */
    struct jq_cpipe *cp; /* cluster mode: the commands held and their
                            replies (cluster.c) */
} jq_pipe_t;

void jq_pipe_init(jq_pipe_t *p, jq_client_t *c);
/* Queues p->a and resets it. Returns 0, or -1 with err on the first
 * failure; once broken, every send returns -1 and leaves err alone. */
int jq_pipe_send(jq_pipe_t *p, char *err, size_t errlen);
/* jq_pipe_send for a command of large arguments (payload chunks): what is
 * queued goes out first, then the command is written straight from its
 * arguments with writev, never formatted into a buffer of its own nor
 * copied into hiredis' (over TLS: jq_pipe_send, and the buffer written out at once). The
 * arguments must stay valid only until it returns. */
int jq_pipe_send_big(jq_pipe_t *p, char *err, size_t errlen);
/* The next reply, for the caller to free; it may be an error reply
 * (check with jq_reply_ok). NULL when the pipe is broken (err is set: by
 * this call when the connection broke now, else by the failure before). */
redisReply *jq_pipe_reply(jq_pipe_t *p, char *err, size_t errlen);
/* Frees the builder and marks the connection broken if any reply is left
 * unread. Returns 0, or -1 if the pipe broke. */
int jq_pipe_end(jq_pipe_t *p);

/* A job's fields (PROTOCOL §1) as jq_client_enqueue writes them, inline
 * and without an id, appended to a (schedule.c keeps them as a
 * schedule's job template); and the checks jq_client_enqueue makes before
 * sending. */
void jq_enqueue_fields(jq_args_t *a, const char *type, const char *payload, size_t len,
                       const jq_enqueue_opts_t *o);
int jq_enqueue_check(const char *type, const char *payload, size_t len, const jq_enqueue_opts_t *o,
                     const char *queue, char *err, size_t errlen);

/* The figures of one queue (admin.c), split so that watch.c can pipeline
 * many queues: send its commands, then collect their replies in order. */
void jq_stats_send(jq_pipe_t *p, const char *queue, char *err, size_t errlen);
/* cancelled (may be NULL) gets the totals' `cancelled` (PROTOCOL §11),
 * which jq_queue_stats_t, a caller-allocated struct of the ABI, lacks. */
int jq_stats_collect(jq_pipe_t *p, const char *queue, jq_queue_stats_t *s, long long *cancelled,
                     char *err, size_t errlen);

/* 0 if r is not NULL and not an error reply, else -1 with err. */
int jq_reply_ok(const redisReply *r, char *err, size_t errlen);

/* jq_reply_ok on every element of an array reply (EXEC's). */
int jq_reply_each_ok(const redisReply *r, char *err, size_t errlen);

/* 1 if r is a string reply holding exactly s (a field name), else 0. */
int jq_reply_is(const redisReply *r, const char *s);

/* The elements of an array reply (a list of chunks) end to end, in one
 * malloc'd buffer of at least 1 byte for the caller to free, with *len
 * their total even when it returns NULL (out of memory). */
char *jq_reply_join(const redisReply *r, size_t *len);

/* Parses a string or integer reply as a long long. Returns 0 or -1. */
int jq_reply_ll(const redisReply *r, long long *out);

#endif
