#ifndef JQ_REPLY_H
#define JQ_REPLY_H

/* Where the worker's hiredis replies live, and how a part of one is kept.
 *
 * hiredis 0.14.1 builds each reply from separate mallocs: every string,
 * array and element vector. A delivered stream entry took about 14 of
 * them, plus as many frees in freeReplyObject, about 30% of a worker's CPU
 * under noop jobs (docs/BENCHMARKS.md, issue 8). An async context hands
 * each reply to its callback and frees it right after, so a connection's
 * replies can instead be carved out of one arena that is rewound when its
 * reply is freed: the reader's object functions (redisReplyObjectFunctions)
 * are replaced by ours.
 *
 * The rule that comes with it: **nothing of a reply may outlive its
 * callback** (the hiredis rule, now without the exception of stealing a
 * sub-element by setting it to NULL). What a run keeps of its entry is
 * copied out with jq_reply_fields_fill, into the run's own allocation. A
 * string reply of JQ_REPLY_OWN_MIN bytes or more (a big payload)
 * has a malloc'd block of its own, in the arena as with the default
 * functions, so it is moved out rather than copied: a big payload is never
 * in memory twice. */

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "job.h"

/* String replies at least this long get their own malloc'd block, as do
 * element vectors of more than this many bytes; see jq_reply_fields_fill. */
#ifndef JQ_REPLY_OWN_MIN /* the fuzz target lowers it to reach the big-string path */
#define JQ_REPLY_OWN_MIN 4096
#endif

/* The most elements an array reply may announce; more fails the reply as
 * out of memory (the reader errors, the connection is dropped and
 * reconnects), so a broken or hostile server cannot make a worker reserve
 * gigabytes for one header (hiredis' own functions would calloc 16 GiB for
 * 2^31 - 1). The largest arrays a consumer asks for are an XREADGROUP's
 * entries (COUNT: at most --io-concurrency, 100,000, plus the threads) and
 * a batch's EXEC and verify replies (one element per run). */
#ifndef JQ_REPLY_ARRAY_MAX
#define JQ_REPLY_ARRAY_MAX (1 << 20)
#endif

/* A bulk string longer than its connection's cap (bulkcap.h) is never
 * stored: the reader gets, in its place, an error line made of this mark
 * and the string's length, which an arena that takes marks (`marks` set:
 * the connection filters) turns into a reply of type JQ_REPLY_OVERSIZED
 * with the length in `integer` and no str. hiredis never makes that type;
 * code that looks for REDIS_REPLY_STRING passes it by. In an entry's
 * fields it reads as {NULL, length} (jq_reply_fields_fill). */
#define JQ_REPLY_OVERSIZED 64
#define JQ_REPLY_OVERSIZED_MARK "\x01jq-oversized "

typedef struct jq_reply_chunk jq_reply_chunk_t;
typedef struct jq_reply_own jq_reply_own_t;

/* One connection's reply memory. Embedded by its owner (rconn.c); every
 * reader attached to it must be freed before jq_reply_arena_destroy. */
typedef struct jq_reply_arena {
    jq_reply_chunk_t *cur;  /* replies are carved from here */
    jq_reply_chunk_t *full; /* older chunks of the replies alive */
    jq_reply_own_t *own;    /* blocks of their own (big strings and
                                     element vectors), freed at rewind */
    int live;               /* replies built and not yet freed */
    int marks;              /* turn JQ_REPLY_OVERSIZED_MARK lines
                                     into JQ_REPLY_OVERSIZED replies */
    char not_master[16];    /* an error reply said the server is no
                                     master now (READONLY, UNBLOCKED...:
                                     jq_sentinel_not_master), its code; the
                                     connection's owner reads and clears
                                     it (rconn.c) */
} jq_reply_arena_t;

void jq_reply_arena_init(jq_reply_arena_t *a);
/* Frees all of a's memory; a reader attached to it must be gone. */
void jq_reply_arena_destroy(jq_reply_arena_t *a);

/* Makes r (a context's c.reader, before its first reply) build its
 * replies in a. A reply is valid until hiredis frees it (after its
 * callback); all its memory is taken back when the last reply alive is
 * freed. The arena keeps one chunk at rest (at most 256 KiB), nothing of a
 * big reply. */
void jq_reply_arena_attach(jq_reply_arena_t *a, redisReader *r);

/* Bytes a holds now, at rest or not (tests). */
size_t jq_reply_arena_held(const jq_reply_arena_t *a);

/* An entry's field array kept past its reply: n views, each either a
 * NUL-terminated copy of a string element, {NULL, length} for a string
 * that was not read (JQ_REPLY_OVERSIZED), or {NULL, 0} for an element that
 * was not a string. It lives in memory of its keeper's (a run allocates it
 * with itself), except big strings (JQ_REPLY_OWN_MIN or more), which are
 * moved out of the reply and freed by jq_reply_fields_release. */
typedef struct jq_reply_fields {
    size_t n;
    jq_str_t f[];
} jq_reply_fields_t;

/* The bytes jq_reply_fields_fill needs for the elements of arr (an array
 * reply), or 0 when that does not fit in a size_t. */
size_t jq_reply_fields_size(const redisReply *arr);
/* Keeps the elements of arr past its callback, in mem (the size above,
 * aligned as malloc aligns): copies the small strings and moves the big
 * ones (their reply's str becomes NULL). Returns mem as the fields. Works
 * on replies built by any reader functions, whose strings are malloc'd or
 * carved from an arena by the rule above. */
jq_reply_fields_t *jq_reply_fields_fill(void *mem, redisReply *arr);
/* Frees the big strings f took over (NULL: nothing), not f itself. Its
 * small strings stay readable until the keeper frees f's memory. */
void jq_reply_fields_release(jq_reply_fields_t *f);

#endif
