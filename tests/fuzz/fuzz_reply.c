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

#include "reply.h"

static int same(const redisReply *a, const redisReply *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case REDIS_REPLY_INTEGER:
        return a->integer == b->integer;
    case REDIS_REPLY_NIL:
        return 1;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements) return 0;
        for (size_t i = 0; i < a->elements; i++)
            if (!same(a->element[i], b->element[i])) return 0;
        return 1;
    default: /* string, status, error */
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0 && a->str[a->len] == '\0';
    }
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = (size_t)data[0] + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;

    jq_reply_arena_t arena;
    jq_reply_arena_init(&arena);
    redisReader *ar = redisReaderCreate();
    redisReader *dr = redisReaderCreate();
    if (!ar || !dr) abort();
    jq_reply_arena_attach(&arena, ar);
    if (!default_array) {
        capped = *dr->fn;
        default_array = capped.createArray;
        capped.createArray = capped_array;
    }
    dr->fn = &capped;

    int failed = 0;
    for (size_t off = 0; off < len && !failed; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (redisReaderFeed(ar, p + off, n) != REDIS_OK) abort();
        if (redisReaderFeed(dr, p + off, n) != REDIS_OK) abort();
        for (;;) {
            void *a = NULL, *d = NULL;
            int ra = redisReaderGetReply(ar, &a);
            int rd = redisReaderGetReply(dr, &d);
            /* A refused malloc (a huge announced array) fails only one
             * side, and only by memory: then stop comparing. */
            if (ra != rd) {
                if (ar->err != REDIS_ERR_OOM && dr->err != REDIS_ERR_OOM) abort();
                if (a) ar->fn->freeObject(a);
                if (d) freeReplyObject(d);
                failed = 1;
                break;
            }
            if (ra != REDIS_OK) {
                failed = 1;
                break;
            }
            if ((a == NULL) != (d == NULL)) abort();
            if (!a) break;
            if (!same(a, d)) abort();
            if (((redisReply *)a)->type == REDIS_REPLY_ARRAY)
                keep_and_check(ar, a, d);
            else
                ar->fn->freeObject(a);
            freeReplyObject(d);
        }
    }
    redisReaderFree(ar); /* frees a partial reply, if any */
    redisReaderFree(dr);
    if (arena.live != 0) abort(); /* every reply was given back */
    jq_reply_arena_destroy(&arena);
    return 0;
}
