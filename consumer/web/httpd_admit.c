/* Which connection gives way: see httpd_admit.h. */

#include <string.h>

#include "httpd_admit.h"

enum { ANY, ORDINARY, RESERVED };

static int same_peer(const jq_httpd_peer_t *a, const jq_httpd_peer_t *b) {
    return a->len == b->len && memcmp(a->addr, b->addr, (size_t)a->len) == 0;
}

static int held_by(const jq_httpd_slot_t *const *s, int n, const jq_httpd_peer_t *peer) {
    int k = 0;
    for (int i = 0; i < n; i++) k += same_peer(&s[i]->peer, peer);
    return k;
}

/* a idle longer than b: an older last byte, or as old and accepted first. */
static int idler(const jq_httpd_slot_t *a, const jq_httpd_slot_t *b) {
    return a->last_ms < b->last_ms || (a->last_ms == b->last_ms && a->seq < b->seq);
}

/* The reading connection that gives way, of peer's (peer non-NULL) or of
 * one kind of slot: the idlest of the address that holds the most, so
 * that an address below its share (a health probe among a flood) keeps
 * what it has while others churn. -1 when none is reading. */
static int victim(const jq_httpd_slot_t *const *s, int n, const jq_httpd_peer_t *peer, int kind) {
    int best = -1, best_held = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i]->reading || (peer && !same_peer(&s[i]->peer, peer))) continue;
        if (kind != ANY && s[i]->reserved != (kind == RESERVED)) continue;
        int held = peer ? 0 : held_by(s, n, &s[i]->peer);
        if (best < 0 || held > best_held || (held == best_held && idler(s[i], s[best]))) {
            best = i;
            best_held = held;
        }
    }
    return best;
}

jq_httpd_verdict_t jq_httpd_admit(const jq_httpd_slot_t *const *s, int n,
                                  const jq_httpd_peer_t *peer, int *evict) {
    int reserved = 0;
    for (int i = 0; i < n; i++) reserved += s[i]->reserved;
    /* The newcomer takes the slot of the connection that gives way. */
    if (held_by(s, n, peer) >= JQ_HTTPD_PER_ADDR) {
        *evict = victim(s, n, peer, ANY);
        if (*evict < 0) return JQ_HTTPD_REFUSE;
        return s[*evict]->reserved ? JQ_HTTPD_ADMIT_RESERVED : JQ_HTTPD_ADMIT;
    }
    *evict = -1;
    if (n - reserved < JQ_HTTPD_MAX_CONNS) return JQ_HTTPD_ADMIT;
    if ((*evict = victim(s, n, NULL, ORDINARY)) >= 0) return JQ_HTTPD_ADMIT;
    if (reserved < JQ_HTTPD_RESERVED) return JQ_HTTPD_ADMIT_RESERVED;
    if ((*evict = victim(s, n, NULL, RESERVED)) >= 0) return JQ_HTTPD_ADMIT_RESERVED;
    return JQ_HTTPD_REFUSE;
}
