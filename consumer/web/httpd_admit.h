#ifndef JQ_HTTPD_ADMIT_H
#define JQ_HTTPD_ADMIT_H

/* Who gets a slot of the HTTP server when a connection arrives (issue 21:
 * 64 slow clients used to hold every slot for 10 s each, and /healthz
 * answered 503 to the orchestrator that then restarted a healthy
 * consumer). A pure decision over the open connections, so that it can be
 * tested without sockets:
 *   - one address holds at most JQ_HTTPD_PER_ADDR connections: past that,
 *     its own idlest connection still reading gives way (so a probe that
 *     shares an address with a flood still gets in), else it is refused;
 *   - below the cap (JQ_HTTPD_MAX_CONNS) a connection is admitted;
 *   - at the cap, a connection still reading its request gives way: of
 *     the address that holds the most connections, the one idle the
 *     longest (since its accept or its last byte). The server keeps no
 *     connection alive between requests, so the idle ones are those that
 *     have not yet sent a whole request; and a flood from a few addresses
 *     churns among its own connections, never taking the one slot of a
 *     health probe from elsewhere;
 *   - when every slot is busy answering, one of JQ_HTTPD_RESERVED slots
 *     above the cap is taken, which serves only the reserved path
 *     (/healthz: see jq_httpd_reserve), the idlest of them giving way in
 *     turn when they are all taken. */

#include <stddef.h>
#include <stdint.h>

#include "httpd.h"

#define JQ_HTTPD_PER_ADDR (JQ_HTTPD_MAX_CONNS / 4)
#define JQ_HTTPD_RESERVED 4

/* A client address, compared as bytes (4 for IPv4, 16 for IPv6). */
typedef struct jq_httpd_peer {
    unsigned char addr[16];
    int len;
} jq_httpd_peer_t;

/* What the decision reads of one open connection. */
typedef struct jq_httpd_slot {
    jq_httpd_peer_t peer;
    int reading;      /* still reading its request: it may give way */
    int reserved;     /* holds one of the reserved slots */
    uint64_t last_ms; /* its accept or its last byte, on the loop's clock */
    uint64_t seq;     /* the order of accepts: of two as idle, the first gives way */
} jq_httpd_slot_t;

typedef enum {
    JQ_HTTPD_REFUSE,        /* answer 503 and close the new connection */
    JQ_HTTPD_ADMIT,         /* it takes an ordinary slot */
    JQ_HTTPD_ADMIT_RESERVED /* it takes a reserved slot */
} jq_httpd_verdict_t;

/* Decides for a new connection from peer, given the n open ones (slots,
 * borrowed for the call). *evict gets the index of the connection to close
 * first, or -1 for none. */
jq_httpd_verdict_t jq_httpd_admit(const jq_httpd_slot_t *const *slots, int n,
                                  const jq_httpd_peer_t *peer, int *evict);

#endif
