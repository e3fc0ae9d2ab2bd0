#ifndef JQ_BULKCAP_H
#define JQ_BULKCAP_H

/* Bulk strings over a cap, refused while they are read.
 *
 * hiredis' reader hands a bulk string to its createString function only
 * once the whole string is in its buffer, and the reply then copies it: a
 * 200 MB payload cost a worker 400 MB and more before anything could look
 * at its length. So the bytes from the socket pass through this filter on
 * their way to the reader (rconn.c reads them itself): it follows RESP's
 * framing (lines, and `$<len>\r\n` plus len + 2 bytes), parsing each as
 * hiredis 0.14.1 does (a line ends at \r\n, a length is strict: a bad one
 * fails the reader alike), and a bulk string
 * whose header announces more than the cap is counted and discarded as it
 * arrives; the reader gets a short placeholder line in its place, which
 * the reply arena turns into a JQ_REPLY_OVERSIZED reply that knows the
 * length (reply.h). Memory for it: none, whatever its size.
 *
 * A state machine over the byte stream; it allocates nothing. */

#include <stddef.h>
#include <hiredis/hiredis.h>

typedef struct jq_bulkcap {
    long long cap;  /* longest bulk string let through; 0: off */
    int state;      /* where in RESP's framing the next byte is */
    long long left; /* bytes of the current bulk (+ CRLF) to pass or skip */
    long long head; /* a `$` header's length so far (held back) */
    int head_sign, head_at, head_digits, head_zero, head_bad;
    int cr;                  /* the byte before was \r (a line ends at \r\n) */
    long long skipped;       /* bulk strings discarded so far */
    long long skipped_bytes; /* their bytes discarded so far (CRLFs too) */
} jq_bulkcap_t;

/* cap: as above; the state starts at a reply's first byte. */
void jq_bulkcap_init(jq_bulkcap_t *f, long long cap);
/* A new connection: back to a reply's first byte (cap and counts kept). */
void jq_bulkcap_reset(jq_bulkcap_t *f);
/* Feeds buf[0..n) to r, every bulk string longer than the cap replaced by
 * its placeholder. Returns REDIS_OK, or REDIS_ERR when the reader refused
 * (out of memory: r->err says so). */
int jq_bulkcap_feed(jq_bulkcap_t *f, redisReader *r, const char *buf, size_t n);

#endif
