/* Tests of consumer/redis/reply.c: replies built by a real hiredis reader in an
 * arena, freed the way an async context frees them, and fields kept past
 * their reply. ASan (make check) sees any use after a rewind. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

static jq_reply_arena_t arena;
static redisReader *rd;

static void setup(void) {
    jq_reply_arena_init(&arena);
    rd = redisReaderCreate();
    cr_assert_not_null(rd);
    jq_reply_arena_attach(&arena, rd);
}

static void teardown(void) {
    redisReaderFree(rd);
    jq_reply_arena_destroy(&arena);
}

TestSuite(reply, .init = setup, .fini = teardown);

/* Feeds RESP and returns the next reply (NULL: incomplete). */
static redisReply *feed(const char *resp, size_t len) {
    cr_assert_eq(redisReaderFeed(rd, resp, len), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK, "%s", rd->errstr);
    return r;
}

#define FEED(s) feed(s, sizeof(s) - 1)
/* Feeds a literal without reading. */
#define PUT(reader, s) redisReaderFeed(reader, s, sizeof(s) - 1)

/* As redisProcessCallbacks does after the callback. */
static void done(redisReply *r) { rd->fn->freeObject(r); }

/* What a run does with an entry's fields: keeps them in its memory. */
static jq_reply_fields_t *keep(redisReply *arr) {
    size_t n = jq_reply_fields_size(arr);
    cr_assert_gt(n, 0);
    void *mem = malloc(n);
    cr_assert_not_null(mem);
    return jq_reply_fields_fill(mem, arr);
}

static void unkeep(jq_reply_fields_t *f) {
    jq_reply_fields_release(f);
    free(f);
}

/* XREADGROUP's answer: [[stream, [[id, [field, value, ...]]]]]. */
static const char xread[] =
    "*1\r\n*2\r\n$6\r\nstream\r\n*2\r\n"
    "*2\r\n$3\r\n1-1\r\n*4\r\n$4\r\ntype\r\n$4\r\nnoop\r\n$7\r\npayload\r\n$1\r\n\xc0\r\n"
    "*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\ntype\r\n:5\r\n";

Test(reply, a_read_reply_has_the_shape_hiredis_gives) {
    redisReply *r = FEED(xread);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 1);
    redisReply *st = r->element[0];
    cr_assert_eq(st->elements, 2);
    cr_assert_str_eq(st->element[0]->str, "stream");
    redisReply *entries = st->element[1];
    cr_assert_eq(entries->elements, 2);
    redisReply *e1 = entries->element[0], *e2 = entries->element[1];
    cr_assert_str_eq(e1->element[0]->str, "1-1");
    cr_assert_eq(e1->element[1]->elements, 4);
    cr_assert_str_eq(e1->element[1]->element[1]->str, "noop");
    cr_assert_eq(e1->element[1]->element[3]->len, 1);
    cr_assert_eq((unsigned char)e1->element[1]->element[3]->str[0], 0xc0);
    cr_assert_eq(e2->element[1]->element[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(e2->element[1]->element[1]->integer, 5);
    done(r);
}

Test(reply, every_kind_of_reply_and_nesting) {
    redisReply *r = FEED("*6\r\n+OK\r\n-ERR no\r\n:-7\r\n$-1\r\n*-1\r\n*0\r\n");
    cr_assert_eq(r->elements, 6);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r->element[0]->str, "OK");
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(r->element[1]->str, "ERR no");
    cr_assert_eq(r->element[2]->integer, -7);
    cr_assert_eq(r->element[3]->type, REDIS_REPLY_NIL);
    cr_assert_eq(r->element[4]->type, REDIS_REPLY_NIL);
    cr_assert_eq(r->element[5]->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->element[5]->elements, 0);
    done(r);
    r = FEED(":42\r\n");
    cr_assert_eq(r->integer, 42, "a root that is not an array");
    done(r);
    r = FEED("$-1\r\n");
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    done(r);
}

Test(reply, memory_comes_back_when_the_reply_is_freed) {
    /* Replies one after another reuse one chunk: the arena does not grow. */
    redisReply *r = FEED(xread);
    size_t held = jq_reply_arena_held(&arena);
    cr_assert_gt(held, 0);
    done(r);
    for (int i = 0; i < 1000; i++) done(FEED(xread));
    cr_assert_eq(jq_reply_arena_held(&arena), held);
}

Test(reply, a_big_reply_is_not_kept_at_rest) {
    /* 20,000 entries of [id, [f, v]]: far more than a chunk kept at rest. */
    size_t n = 20000, cap = n * 64 + 64, len = 0;
    char *resp = malloc(cap);
    len += (size_t)sprintf(resp + len, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(resp + len, "*2\r\n$8\r\n%08zu\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", i);
    redisReply *r = feed(resp, len);
    free(resp);
    cr_assert_eq(r->elements, n);
    cr_assert_str_eq(r->element[n - 1]->element[0]->str, "00019999");
    cr_assert_gt(jq_reply_arena_held(&arena), 256 * 1024);
    done(r);
    cr_assert_leq(jq_reply_arena_held(&arena), 256 * 1024);
}

Test(reply, a_reply_in_pieces_lives_across_feeds) {
    static const char whole[] = "*2\r\n$5\r\nhello\r\n*1\r\n:3\r\n";
    void *r = NULL;
    for (size_t i = 0; i + 1 < sizeof(whole) - 1; i++) {
        cr_assert_eq(redisReaderFeed(rd, whole + i, 1), REDIS_OK);
        cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
        cr_assert_null(r);
    }
    redisReply *rr = feed(whole + sizeof(whole) - 2, 1);
    cr_assert_str_eq(rr->element[0]->str, "hello");
    cr_assert_eq(rr->element[1]->element[0]->integer, 3);
    done(rr);
}

Test(reply, a_protocol_error_mid_reply_frees_the_partial_reply) {
    cr_assert_eq(PUT(rd, "*3\r\n$1\r\na\r\n?bad\r\n"), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_ERR);
    cr_assert_null(r);
    cr_assert_eq(arena.live, 0, "the partial reply was given back");
}

Test(reply, a_reader_freed_mid_reply_gives_it_back) {
    void *r = NULL;
    cr_assert_eq(PUT(rd, "*2\r\n$3\r\nabc\r\n"), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
    cr_assert_null(r);
    cr_assert_eq(arena.live, 1);
    redisReaderFree(rd);
    cr_assert_eq(arena.live, 0);
    rd = redisReaderCreate(); /* for teardown */
}

Test(reply, an_array_count_past_the_cap_fails_the_reply_as_out_of_memory) {
    /* A broken server announces 2^31 - 1 elements: refused at the header,
     * before anything is reserved for it. */
    void *r = NULL;
    cr_assert_eq(PUT(rd, "*2\r\n:1\r\n*2147483647\r\n:1\r\n"), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_ERR);
    cr_assert_null(r);
    cr_assert_eq(rd->err, REDIS_ERR_OOM);
    cr_assert_eq(arena.live, 0, "the partial reply around it was given back");
    cr_assert_leq(jq_reply_arena_held(&arena), 16 * 1024);
}

Test(reply, an_array_of_the_cap_is_taken) {
    char head[32];
    int n = snprintf(head, sizeof(head), "*%d\r\n:1\r\n", JQ_REPLY_ARRAY_MAX);
    cr_assert_eq(redisReaderFeed(rd, head, (size_t)n), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK, "%s", rd->errstr);
    cr_assert_null(r, "incomplete: one element of many came");
    cr_assert_eq(arena.live, 1);
    n = snprintf(head, sizeof(head), "*%d\r\n", JQ_REPLY_ARRAY_MAX + 1);
    redisReader *other = redisReaderCreate();
    jq_reply_arena_t a2;
    jq_reply_arena_init(&a2);
    jq_reply_arena_attach(&a2, other);
    cr_assert_eq(redisReaderFeed(other, head, (size_t)n), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(other, &r), REDIS_ERR, "one more is refused");
    redisReaderFree(other);
    jq_reply_arena_destroy(&a2);
}

Test(reply, big_strings_have_blocks_of_their_own_and_move_out) {
    size_t big = 64 * 1024; /* more than the first chunk */
    char *resp = malloc(big + 64);
    size_t len = (size_t)sprintf(resp, "*4\r\n$4\r\ntype\r\n:9\r\n$7\r\npayload\r\n$%zu\r\n", big);
    memset(resp + len, 'p', big);
    len += big;
    memcpy(resp + len, "\r\n", 2);
    redisReply *r = feed(resp, len + 2);
    free(resp);
    size_t held = jq_reply_arena_held(&arena);
    cr_assert_lt(held, big, "the big string is not in a chunk");
    char *p = r->element[3]->str;
    jq_reply_fields_t *f = keep(r);
    cr_assert_null(r->element[3]->str, "moved out of the reply");
    cr_assert_eq(f->f[3].p, p);
    cr_assert_eq(f->f[3].len, big);
    cr_assert_null(f->f[1].p, "an integer is not a string");
    cr_assert_str_eq(f->f[0].p, "type");
    cr_assert_neq(f->f[0].p, r->element[0]->str, "a small string is copied");
    done(r);
    /* All still readable after the rewind (ASan would say otherwise). */
    cr_assert_eq(f->n, 4);
    cr_assert_str_eq(f->f[2].p, "payload");
    cr_assert_eq(f->f[3].p[big - 1], 'p');
    cr_assert_eq(f->f[3].p[big], '\0');
    jq_reply_fields_release(f);
    cr_assert_null(f->f[3].p, "released: the big string is freed");
    cr_assert_str_eq(f->f[2].p, "payload", "the small ones stay until the keeper frees f");
    unkeep(f); /* a second release frees nothing twice */
}

Test(reply, a_big_string_not_moved_is_freed_with_its_reply) {
    size_t big = 3 * JQ_REPLY_OWN_MIN;
    char *resp = malloc(big + 32);
    size_t len = (size_t)sprintf(resp, "$%zu\r\n", big);
    memset(resp + len, 'q', big);
    memcpy(resp + len + big, "\r\n", 2);
    redisReply *r = feed(resp, len + big + 2);
    free(resp);
    cr_assert_eq(r->len, big);
    done(r); /* LeakSanitizer would report the block if it stayed */
    cr_assert_eq(arena.live, 0);
}

Test(reply, fields_keep_works_on_replies_of_hiredis_own_functions) {
    redisReader *plain = redisReaderCreate();
    cr_assert_eq(PUT(plain, "*2\r\n$1\r\nk\r\n$2\r\nvv\r\n"), REDIS_OK);
    void *rp = NULL;
    cr_assert_eq(redisReaderGetReply(plain, &rp), REDIS_OK);
    jq_reply_fields_t *f = keep(rp);
    freeReplyObject(rp);
    redisReaderFree(plain);
    cr_assert_eq(f->n, 2);
    cr_assert_str_eq(f->f[1].p, "vv");
    cr_assert_eq(f->f[1].len, 2);
    unkeep(f);
    jq_reply_fields_release(NULL);
}
