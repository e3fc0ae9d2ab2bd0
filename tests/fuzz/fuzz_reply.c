/* libFuzzer target: the worker's reply arena (consumer/redis/reply.c) against
 * hiredis' own reply objects. The input is what a server (a broken or
 * hostile one included) might send; the first byte picks how it is fed to
 * the reader (1..256 bytes at a time), so every place a read can end is
 * explored. Both readers get the same bytes and must give the same replies
 * (types, strings, integers, shapes) and fail at the same reply. Each
 * array reply's elements are then kept past the reply as fetch.c keeps an
 * entry's fields (jq_reply_fields_fill, big strings moved out) and must
 * read the same after the reply is freed. Built with JQ_REPLY_OWN_MIN
 * lowered (Makefile), so inputs of libFuzzer's size reach the big-string
 * path too. ASan checks that the arena neither leaks nor reuses what is
 * still alive. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "bulkcap.h"
#include "reply.h"

static int same(const redisReply *a, const redisReply *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
        case REDIS_REPLY_INTEGER: return a->integer == b->integer;
        case REDIS_REPLY_NIL: return 1;
        case REDIS_REPLY_ARRAY:
            if (a->elements != b->elements) return 0;
            for (size_t i = 0; i < a->elements; i++)
                if (!same(a->element[i], b->element[i])) return 0;
            return 1;
        default: /* string, status, error */
            return a->len == b->len && memcmp(a->str, b->str, a->len) == 0 &&
                   a->str[a->len] == '\0';
    }
}

/* A reply read through the bulk cap (bulkcap.c) against the same bytes
 * read whole: the same, except that every string longer than cap is a
 * JQ_REPLY_OVERSIZED reply of its length (and an error line that forges
 * the placeholder reads as one too: harmless, it only refuses a value). */
static int same_capped(const redisReply *f, const redisReply *d, long long cap) {
    if (d->type == REDIS_REPLY_STRING && (long long)d->len > cap)
        return f->type == JQ_REPLY_OVERSIZED && f->integer == (long long)d->len && !f->str;
    size_t m = sizeof(JQ_REPLY_OVERSIZED_MARK) - 1;
    if (d->type == REDIS_REPLY_ERROR && d->len > m &&
        memcmp(d->str, JQ_REPLY_OVERSIZED_MARK, m) == 0)
        return f->type == JQ_REPLY_OVERSIZED;
    if (d->type != REDIS_REPLY_ARRAY || f->type != REDIS_REPLY_ARRAY) return same(f, d);
    if (f->elements != d->elements) return 0;
    for (size_t i = 0; i < f->elements; i++)
        if (!same_capped(f->element[i], d->element[i], cap)) return 0;
    return 1;
}

/* Keeps arr's elements as a run keeps its entry's fields, frees the reply,
 * then checks them against the default reader's copy (want). */
static void keep_and_check(redisReader *ar, redisReply *arr, const redisReply *want) {
    size_t size = jq_reply_fields_size(arr);
    if (size == 0 || size > (1u << 24)) {
        ar->fn->freeObject(arr);
        return;
    }
    void *mem = malloc(size);
    if (!mem) {
        ar->fn->freeObject(arr);
        return;
    }
    jq_reply_fields_t *f = jq_reply_fields_fill(mem, arr);
    ar->fn->freeObject(arr); /* the arena may rewind: f must not care */
    if (f->n != want->elements) abort();
    for (size_t i = 0; i < f->n; i++) {
        const redisReply *e = want->element[i];
        if (e->type == REDIS_REPLY_STRING) {
            if (!f->f[i].p || f->f[i].len != e->len || memcmp(f->f[i].p, e->str, e->len) != 0 ||
                f->f[i].p[e->len] != '\0')
                abort();
        } else if (f->f[i].p) {
            abort();
        }
    }
    jq_reply_fields_release(f);
    free(mem);
}

/* hiredis' own objects, with the arena's cap on an array's announced
 * elements (reply.h): past it both readers fail alike, and neither
 * reserves memory for elements that never come. */
static redisReplyObjectFunctions capped;
static void *(*default_array)(const redisReadTask *, int);

static void *capped_array(const redisReadTask *task, int elements) {
    if (elements > JQ_REPLY_ARRAY_MAX) return NULL;
    return default_array(task, elements);
}

/* The three readers of one input: ar (the arena), dr (hiredis' own
 * objects) and cr (the arena behind the bulk cap). */
typedef struct run {
    jq_reply_arena_t arena, carena;
    redisReader *ar, *dr, *cr;
    jq_bulkcap_t cap;
    void *cq[64]; /* cr's replies, waiting for dr to give the same ones */
    size_t cqn, cqh;
    int failed, cfailed, dfailed;
} run_t;

static void run_init(run_t *r, size_t len) {
    memset(r, 0, sizeof(*r));
    jq_reply_arena_init(&r->arena);
    r->ar = redisReaderCreate();
    r->dr = redisReaderCreate();
    if (!r->ar || !r->dr) abort();
    jq_reply_arena_attach(&r->arena, r->ar);
    if (!default_array) {
        capped = *r->dr->fn;
        default_array = capped.createArray;
        capped.createArray = capped_array;
    }
    r->dr->fn = &capped;
    /* The third reader gets the bytes through the bulk cap, which runs
     * ahead of dr (it needs no skipped string's bytes to end a reply). */
    jq_reply_arena_init(&r->carena);
    r->carena.marks = 1;
    r->cr = redisReaderCreate();
    if (!r->cr) abort();
    jq_reply_arena_attach(&r->carena, r->cr);
    jq_bulkcap_init(&r->cap, (long long)(len % 97) + 1);
}

/* Feeds n bytes to all three readers and queues what cr gives. */
static void run_feed(run_t *r, const char *p, size_t n) {
    if (redisReaderFeed(r->ar, p, n) != REDIS_OK) abort();
    if (redisReaderFeed(r->dr, p, n) != REDIS_OK) abort();
    if (!r->cfailed && jq_bulkcap_feed(&r->cap, r->cr, p, n) != REDIS_OK) r->cfailed = 1;
    while (!r->cfailed && r->cqn < 64) {
        void *c = NULL;
        if (redisReaderGetReply(r->cr, &c) != REDIS_OK) r->cfailed = 1;
        if (!c) break;
        r->cq[r->cqn++] = c;
    }
}

/* Checks a reply both ar and dr gave (a, d) against cr's next one. */
static void run_check(run_t *r, void *a, redisReply *d) {
    if (!same(a, d)) abort();
    if (r->cqh < r->cqn) {
        if (!same_capped(r->cq[r->cqh], d, r->cap.cap)) abort();
        r->cr->fn->freeObject(r->cq[r->cqh++]);
    } else if (!r->cfailed && r->cqn < 64) {
        abort(); /* dr has a reply the capped reader never gave */
    }
    if (((redisReply *)a)->type == REDIS_REPLY_ARRAY)
        keep_and_check(r->ar, a, d);
    else
        r->ar->fn->freeObject(a);
    freeReplyObject(d);
}

/* Takes every reply ar and dr have, in step, until one has none. */
static void run_drain(run_t *r) {
    for (;;) {
        void *a = NULL, *d = NULL;
        int ra = redisReaderGetReply(r->ar, &a);
        int rd = redisReaderGetReply(r->dr, &d);
        /* A refused malloc (a huge announced array) fails only one side,
         * and only by memory: then stop comparing. */
        if (ra != rd) {
            if (r->ar->err != REDIS_ERR_OOM && r->dr->err != REDIS_ERR_OOM) abort();
            if (a) r->ar->fn->freeObject(a);
            if (d) freeReplyObject(d);
            r->failed = 1;
            return;
        }
        if (ra != REDIS_OK) {
            r->failed = r->dfailed = 1;
            return;
        }
        if ((a == NULL) != (d == NULL)) abort();
        if (!a) return;
        run_check(r, a, d);
    }
}

/* What the cap refused, the reader refuses too (it is only ahead); then
 * every reply must have been given back to both arenas. */
static void run_end(run_t *r) {
    if (r->cfailed && !r->dfailed && r->cr->err != REDIS_ERR_OOM && r->ar->err != REDIS_ERR_OOM) {
        void *d = NULL;
        while (redisReaderGetReply(r->dr, &d) == REDIS_OK && d) freeReplyObject(d);
        if (!r->dr->err) abort();
    }
    while (r->cqh < r->cqn) r->cr->fn->freeObject(r->cq[r->cqh++]);
    redisReaderFree(r->cr);
    if (r->carena.live != 0) abort();
    jq_reply_arena_destroy(&r->carena);
    redisReaderFree(r->ar); /* frees a partial reply, if any */
    redisReaderFree(r->dr);
    if (r->arena.live != 0) abort(); /* every reply was given back */
    jq_reply_arena_destroy(&r->arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = (size_t)data[0] + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    static run_t r;
    run_init(&r, len);
    for (size_t off = 0; off < len && !r.failed; off += step) {
        run_feed(&r, p + off, len - off < step ? len - off : step);
        run_drain(&r);
    }
    run_end(&r);
    return 0;
}
