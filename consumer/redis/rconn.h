#ifndef JQ_RCONN_H
#define JQ_RCONN_H

/* One hiredis async connection on a libuv loop that stays up: it connects
 * with a timeout, and when Redis goes away it reconnects with capped
 * exponential backoff, logging the outage once and its end once.
 *
 * It carries its own glue between hiredis and libuv instead of hiredis'
 * adapters/libuv.h, because the 0.14.1 adapter drops poll errors (a refused
 * connection calls no callback and the loop just returns).
 *
 * Replies: a command's callback gets the reply, or NULL when the connection
 * was lost (or closed) before the reply came. The reply dies when the
 * callback returns, all of it: it is built in the connection's arena
 * (reply.h), so no sub-element may be stolen; copy what you keep
 * (jq_reply_fields_fill for an entry's fields). */

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <uv.h>

#include "args.h"
#include "bulkcap.h"
#include "reply.h"
#include "resolve.h"
#include "tls.h"
#include "url.h"

typedef struct jq_rconn jq_rconn_t;
typedef void (*jq_rconn_cb)(jq_rconn_t *c);
/* why: Redis's own error text (never holds the password), valid during
 * the call. */
typedef void (*jq_rconn_refused_cb)(jq_rconn_t *c, const char *step, const char *why);
/* Redis Cluster (rcluster.h): takes a command instead of the connection,
 * cmd[0..len) its RESP form (valid during the call), a its argv. Returns
 * as jq_rconn_args. */
typedef int (*jq_rconn_route_fn)(void *route_data, const jq_args_t *a, const char *cmd, size_t len,
                                 redisCallbackFn *fn, void *priv);

struct jq_rconn {
    uv_loop_t *loop;
    const jq_url_t *url;   /* borrowed; outlives the connection */
    jq_tls_t *tls;         /* borrowed: rediss://'s settings (tls.h), else NULL */
    const char *name;      /* for logs, e.g. "fetch" */
    redisAsyncContext *ac; /* NULL while down */
    int up;                /* connected and the handshake (AUTH,
                                 SELECT, PING) answered: commands may be
                                 sent */
    int handshake;         /* handshake replies still to come */
    int closing;
    int down_logged; /* an outage was logged (2: as a refused
                                 handshake); log its end */
    int backoff_ms;
    int backoff_max_ms; /* the backoff's cap (tests shorten it) */
    int connect_timeout_ms;
    uv_timer_t timer;      /* connect timeout and reconnect backoff */
    jq_rconn_cb on_up;     /* connected, first time or again */
    jq_rconn_cb on_down;   /* lost; pending callbacks already got NULL */
    jq_rconn_cb on_closed; /* after jq_rconn_close: every handle closed */
    /* A reply is bringing a bulk string over the cap (jq_rconn_cap): called
     * when its skip begins and again every JQ_RCONN_SKIP_STEP bytes of it,
     * so the owner can do other work over another connection meanwhile
     * (Redis may take seconds to send what is discarded here). */
    jq_rconn_cb on_skipping;
    /* Redis refused the handshake for good (WRONGPASS, NOAUTH, a bad DB):
     * when set, the connection stops retrying and calls it (the owner
     * then closes it or exits); when NULL, the refusal is logged once per
     * outage and retried like any outage. A LOADING or BUSY reply is an
     * outage either way. */
    jq_rconn_refused_cb on_refused;
    int quiet_refusals;     /* with on_refused NULL: retry a refusal
                                 without a log line (a worker before its
                                 first connection: the master reports it) */
    char refused[16];       /* the handshake step Redis refused, e.g. "AUTH" */
    char why[600];          /* the reason of the loss being handled */
    char poll_error[96];    /* libuv refused to watch the socket: the
                                 context is dropped at once (rconn.c) */
    jq_reply_arena_t arena; /* where each context's replies are built;
                                 freed once the connection is closed */
    jq_bulkcap_t bulkcap;   /* longer bulk strings are skipped unread
                                 (bulkcap.h); set with jq_rconn_cap */
    /* redis+sentinel:// (url.h): each (re)connect asks the sentinels
     * first, off the loop (resolve.h), connects where they say, and checks
     * ROLE in the handshake; a READONLY reply (a demoted master) drops the
     * connection, which then asks again. */
    jq_resolve_t resolve;
    jq_url_addr_t master; /* where the sentinels said the master is */
    int pinned;           /* +switch-master named master (jq_rconn_switch):
                             the next connect goes there unasked */
    jq_url_addr_t stale;  /* the master +switch-master left: a sentinel
                             still naming it is behind, until stale_until
                             (the loop's ms) */
    uint64_t stale_until;
    int to_sentinel; /* a connection to the sentinels themselves, in turn
                        (jq_rconn_init_sentinel) */
    /* Redis Cluster (rcluster.h): when set, jq_rconn_args hands every
     * command to route (while c is up); the connection itself goes to
     * the URL's seeds in turn, one more at each loss. */
    jq_rconn_route_fn route;
    void *route_data;
    int seed_next;
    void *data; /* the owner's */
};

/* Starts connecting c (embedded by the caller) to url; on_up runs when
 * connected and Redis accepted the AUTH/SELECT of url (the handshake) and,
 * with sentinels, said it is the master. Never fails for an unreachable
 * server (or sentinels): it keeps retrying. A rediss://
 * url needs tls (jq_tls_new), which must outlive c; over TLS a
 * certificate that does not verify is refused like a bad password (step
 * "TLS", see on_refused). Returns 0, or -1 if the loop refused the timer
 * or tls is missing. */
int jq_rconn_init(jq_rconn_t *c, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                  const char *name);

/* The same, to one of url's sentinels rather than to its master (url
 * must be redis+sentinel://): each attempt the next sentinel in turn,
 * AUTH with ?sentinel_password= and PING as the handshake, TCP keepalive
 * on, no ROLE. For a subscription (switchsub.h). */
int jq_rconn_init_sentinel(jq_rconn_t *c, uv_loop_t *loop, const jq_url_t *url, jq_tls_t *tls,
                           const char *name);

/* The sentinel at sentinel announced +switch-master from old to now
 * (switchsub.h). A connection to old is dropped, logged like a sentinel's
 * new answer, and reconnects to now at once without asking (ROLE is still
 * checked there); one elsewhere (on now already) is left alone. For
 * JQ_RCONN_STALE_MS after, a sentinel that still names old is taken as
 * behind and the next one is asked. Does nothing without sentinels. */
void jq_rconn_switch(jq_rconn_t *c, const jq_url_addr_t *sentinel, const jq_url_addr_t *old,
                     const jq_url_addr_t *now);
/* Sentinels learn a switch from each other within a second or two (their
 * hello messages every 2 s); the demoted master is made a replica some
 * seconds later, and says role:master until then. */
#define JQ_RCONN_STALE_MS 10000

/* Sends the command built in a (args.h): the one way the consumer sends a
 * command. hiredis copies it at once, so a may be reset as soon as this
 * returns. Returns 0, or -1 when the
 * connection is down or a ran out of memory while it was built (a->oom):
 * then fn never runs. */
int jq_rconn_args(jq_rconn_t *c, const jq_args_t *a, redisCallbackFn *fn, void *priv);

/* Sends cmd[0..len), a command in RESP form, on c itself, never routed
 * (rcluster.c). Returns 0, or -1 when c is down (fn never runs). */
int jq_rconn_raw(jq_rconn_t *c, const char *cmd, size_t len, redisCallbackFn *fn, void *priv);

/* jq_rconn_args for a command of large arguments (a result's chunks):
 * the first n_copy arguments are copied as usual, the others are written
 * from a's pointers (writev), not copied, so they must stay valid and
 * unchanged until the reply of this command or of a later one on c came
 * (then they were written), or c was lost (then nothing more is written
 * from them). In cluster mode (routed), over TLS, or when the
 * bookkeeping cannot grow, it copies like jq_rconn_args. Returns 0 or -1
 * as jq_rconn_args does. */
int jq_rconn_args_ref(jq_rconn_t *c, const jq_args_t *a, int n_copy, redisCallbackFn *fn,
                      void *priv);

/* From now on, bulk strings longer than cap bytes in c's replies are
 * skipped as they arrive, never stored: each reads as a
 * JQ_REPLY_OVERSIZED reply with its length (reply.h). 0: off (the
 * default). */
void jq_rconn_cap(jq_rconn_t *c, long long cap);
#define JQ_RCONN_SKIP_STEP (16LL << 20)

/* Closes c. graceful: waits for pending replies (their callbacks run);
 * otherwise pending callbacks get NULL at once (for a connection blocked in
 * XREADGROUP). on_closed(c) runs when all is closed; then c may be freed. */
void jq_rconn_close(jq_rconn_t *c, int graceful, jq_rconn_cb on_closed);

#endif
