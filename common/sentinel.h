#ifndef JQ_SENTINEL_H
#define JQ_SENTINEL_H

/* Where a redis+sentinel:// URL's master is (url.h): the sentinels are
 * asked in turn, `SENTINEL get-master-addr-by-name NAME`, and the first
 * address given wins. Whoever connects there then checks, with `ROLE`, that
 * the server says it is the master (a sentinel may lag behind a failover),
 * and asks again, from the next sentinel, if it does not.
 *
 * The resolution is blocking, each sentinel bounded by a timeout: libjobq
 * calls it where it connects, the consumer on libuv's threadpool (rconn.c),
 * so a worker's loop never waits for a sentinel. */

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "tls.h"
#include "url.h"

/* How long a sentinel may take to accept the connection, and to answer. */
#define JQ_SENTINEL_TIMEOUT_MS 1000

/* The resolution's outcomes, besides 0. */
#define JQ_SENTINEL_DOWN (-1) /* no sentinel gave an address: an outage */
#define JQ_SENTINEL_REFUSED                                                                        \
    (-2) /* each sentinel that answered refused (an
                                    unknown master name, a wrong or missing
                                    sentinel password): a configuration error */

/* Asks u's sentinels for the master's address, in turn from
 * u->sentinels[*next % nsentinels] on, each within timeout_ms to connect
 * and timeout_ms to answer; over TLS with tls (rediss+sentinel://: the
 * same settings as the master's, the name checked each sentinel's host
 * unless --redis-tls-server-name says), else NULL. Returns 0 with *out set and *next the index of
 * the sentinel that answered, or JQ_SENTINEL_DOWN / JQ_SENTINEL_REFUSED
 * with err naming each sentinel and what it said (never a password). */
int jq_sentinel_resolve(const jq_url_t *u, jq_tls_t *tls, int timeout_ms, int *next,
                        jq_url_addr_t *out, char *err, size_t errlen);

/* Whether r, the reply to ROLE, says master: 1, or 0 with why naming the
 * role it says. A ROLE refused (NOPERM for an ACL user, a renamed command)
 * counts as 1: the sentinels' word stands, and a write on a replica would
 * answer READONLY, which makes the connection ask again. */
int jq_sentinel_role_ok(const redisReply *r, char *why, size_t whylen);

/* Whether an error reply's text says the server is no master we can use
 * now, which with sentinels means "ask them again", never a job's failure:
 * READONLY (a write on a replica: a demoted master), UNBLOCKED (Redis 7
 * ends a blocked XREADGROUP or BLPOP so when its master becomes a
 * replica), MASTERDOWN (a replica cut off from its master) or LOADING (a
 * demoted master loading the new one's data). Returns the code's length
 * (err[0..n) names it), or 0. */
size_t jq_sentinel_not_master(const char *err, size_t len);

#endif
