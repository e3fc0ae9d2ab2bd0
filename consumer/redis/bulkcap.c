/* Bulk strings over a cap, skipped while read. See bulkcap.h. */

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "args.h"
#include "bulkcap.h"
#include "reply.h"

enum {
    AT_START, /* a reply's (or element's) first byte: its type */
    IN_LINE,  /* a +, -, : or * line, passed through to its \r\n */
    IN_HEAD,  /* a $ header, held back until its length is known */
    IN_BULK,  /* a bulk string's bytes, passed */
    IN_SKIP,  /* an oversized bulk string's bytes, discarded */
};

void jq_bulkcap_init(jq_bulkcap_t *f, long long cap) {
    memset(f, 0, sizeof(*f));
    f->cap = cap;
}

void jq_bulkcap_reset(jq_bulkcap_t *f) {
    f->state = AT_START;
    f->left = 0;
    f->cr = 0;
}

/* One byte of a header's length, checked as hiredis 0.14.1 checks it
 * (string2ll): an optional -, then digits without a leading zero (0
 * alone), within a long long. */
static void head_byte(jq_bulkcap_t *f, char c) {
    if (f->head_at++ == 0 && c == '-') {
        f->head_sign = -1;
    } else if (c >= '0' && c <= '9' && !f->head_zero && f->head <= (LLONG_MAX - 9) / 10) {
        if (c == '0' && f->head_digits == 0) f->head_zero = 1;
        f->head = f->head * 10 + (c - '0');
        f->head_digits++;
    } else {
        f->head_bad = 1;
    }
}

/* The header's line is over: the reader gets it in its plain form, or the
 * placeholder instead of the string, which is then skipped. */
static int end_head(jq_bulkcap_t *f, redisReader *r) {
    long long len = f->head_sign * f->head;
    char line[64];
    size_t m = 0;
    f->state = AT_START;
    if (f->head_bad || !f->head_digits || len < -1 || (f->head_sign < 0 && f->head_zero))
        return redisReaderFeed(r, "$?\r\n", 5); /* the reader fails it, as it would */
    if (len == -1) return redisReaderFeed(r, "$-1\r\n", 5);
    if (len <= f->cap) {
        line[m++] = '$';
        f->state = IN_BULK;
    } else {
        line[0] = '-';
        memcpy(line + 1, JQ_REPLY_OVERSIZED_MARK, sizeof(JQ_REPLY_OVERSIZED_MARK) - 1);
        m = sizeof(JQ_REPLY_OVERSIZED_MARK);
        f->state = IN_SKIP;
        f->skipped++;
    }
    m += (size_t)jq_ll2str(line + m, len);
    memcpy(line + m, "\r\n", 2);
    f->left = len + 2;
    return redisReaderFeed(r, line, m + 2);
}

/* Whether a header read whole within one buffer may pass on as it is:
 * well formed, and nil or within the cap. Then the reader reads it from
 * the buffer with the rest, in one feed: a header held back costs two
 * feeds (two copies into the reader's buffer) per field of every entry. */
static int head_passes(const jq_bulkcap_t *f) {
    long long len = f->head_sign * f->head;
    if (f->head_bad || !f->head_digits || (f->head_sign < 0 && f->head_zero)) return 0;
    return len == -1 || (len >= 0 && len <= f->cap);
}

/* A +, -, : or * line from buf[i]: up to the byte after its \r\n, or to
 * n with the state kept. memchr, not a byte loop: array headers are most
 * of what is scanned here. */
static size_t scan_line(jq_bulkcap_t *f, const char *buf, size_t i, size_t n) {
    while (i < n) {
        const char *nl = memchr(buf + i, '\n', n - i);
        if (!nl) {
            f->cr = buf[n - 1] == '\r';
            return n;
        }
        size_t j = (size_t)(nl - buf);
        int cr = j > i ? buf[j - 1] == '\r' : f->cr;
        f->cr = 0;
        i = j + 1;
        if (cr) {
            f->state = AT_START;
            return i;
        }
    }
    return i;
}

/* A $ header's bytes from buf[i], through its \r\n (then *ended) or to n. */
static size_t scan_head(jq_bulkcap_t *f, const char *buf, size_t i, size_t n, int *ended) {
    *ended = 0;
    while (i < n) {
        char c = buf[i++];
        if (f->cr) {
            f->cr = 0;
            if (c == '\n') {
                *ended = 1;
                return i;
            }
            head_byte(f, '\r'); /* not the line's end: a bad length */
        }
        if (c == '\r')
            f->cr = 1;
        else
            head_byte(f, c);
    }
    return i;
}

int jq_bulkcap_feed(jq_bulkcap_t *f, redisReader *r, const char *buf, size_t n) {
    if (f->cap <= 0) return redisReaderFeed(r, buf, n);
    size_t i = 0, from = 0; /* buf[from, i) is passed on as it is */
    size_t head = SIZE_MAX; /* where a header begun in this buffer begins */
    int ended;
    while (i < n) {
        switch (f->state) {
            case AT_START:
                f->cr = 0;
                if (buf[i] != '$') {
                    f->state = IN_LINE;
                    break;
                }
                head = i++;
                f->state = IN_HEAD;
                f->head = f->head_at = f->head_digits = f->head_zero = f->head_bad = 0;
                f->head_sign = 1;
                break;
            case IN_LINE: i = scan_line(f, buf, i, n); break;
            case IN_HEAD:
                i = scan_head(f, buf, i, n, &ended);
                if (!ended) break;
                if (head != SIZE_MAX && head_passes(f)) {
                    long long len = f->head_sign * f->head;
                    f->state = len == -1 ? AT_START : IN_BULK;
                    f->left = len == -1 ? 0 : len + 2;
                    head = SIZE_MAX;
                    break;
                }
                /* Held back: what came before it goes first, then the reader
             * gets the header's plain form or the placeholder (end_head). */
                if (head != SIZE_MAX && head > from &&
                    redisReaderFeed(r, buf + from, head - from) != REDIS_OK)
                    return REDIS_ERR;
                head = SIZE_MAX;
                from = i;
                if (end_head(f, r) != REDIS_OK) return REDIS_ERR;
                break;
            case IN_BULK:
            case IN_SKIP: {
                size_t take = (size_t)f->left < n - i ? (size_t)f->left : n - i;
                i += take;
                f->left -= (long long)take;
                if (f->state == IN_SKIP) {
                    from = i;
                    f->skipped_bytes += (long long)take;
                }
                if (f->left == 0) f->state = AT_START;
                break;
            }
        }
    }
    /* A header still open at the buffer's end is held back whole: the
     * next buffer ends it through end_head. */
    size_t to = f->state != IN_HEAD ? i : head != SIZE_MAX ? head : from;
    if (to > from && redisReaderFeed(r, buf + from, to - from) != REDIS_OK) return REDIS_ERR;
    return REDIS_OK;
}
