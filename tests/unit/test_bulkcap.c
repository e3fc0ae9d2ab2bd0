/* Tests of consumer/redis/bulkcap.c: RESP fed through the cap into a real
 * hiredis reader whose replies live in the arena (reply.c), in every split
 * a socket could make. A bulk string over the cap must come out as a
 * JQ_REPLY_OVERSIZED reply with its length, the rest of the reply intact,
 * and its bytes never reach the reader. */

#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bulkcap.h"
#include "reply.h"

static jq_reply_arena_t arena;
static redisReader *rd;
static jq_bulkcap_t cap;

static void setup(void) {
    jq_reply_arena_init(&arena);
    arena.marks = 1;
    rd = redisReaderCreate();
    cr_assert_not_null(rd);
    jq_reply_arena_attach(&arena, rd);
    jq_bulkcap_init(&cap, 8);
}

static void teardown(void) {
    redisReaderFree(rd);
    jq_reply_arena_destroy(&arena);
}

TestSuite(bulkcap, .init = setup, .fini = teardown);

/* Feeds s through the cap in pieces of step bytes; returns the one reply. */
static redisReply *feed(const char *s, size_t len, size_t step) {
    void *r = NULL;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        cr_assert_eq(jq_bulkcap_feed(&cap, rd, s + off, n), REDIS_OK);
        /* The capped string's bytes never reach the reader. */
        if (cap.cap)
            cr_assert_null(memmem(rd->buf, rd->len, "012345", 6), "the reader got the string");
        if (!r) cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK, "%s", rd->errstr);
    }
    return r;
}

/* An XREADGROUP answer: one entry with a payload of 20 bytes (over the
 * cap of 8), a type, and a second entry whose fields are all small. */
static const char xread[] = "*1\r\n*2\r\n$6\r\nstream\r\n*2\r\n"
                            "*2\r\n$3\r\n1-1\r\n*6\r\n$4\r\ntype\r\n$4\r\nnoop\r\n$7\r\npayload\r\n"
                            "$20\r\n0123456789\r\n\r\n567890\r\n$5\r\nowner\r\n$-1\r\n"
                            "*2\r\n$3\r\n1-2\r\n*2\r\n$4\r\ntype\r\n:5\r\n";

static void check_xread(redisReply *r) {
    cr_assert_not_null(r);
    redisReply *entries = r->element[0]->element[1];
    cr_assert_eq(entries->elements, 2);
    redisReply *f = entries->element[0]->element[1];
    cr_assert_eq(f->elements, 6);
    cr_assert_str_eq(f->element[1]->str, "noop");
    cr_assert_str_eq(f->element[2]->str, "payload");
    cr_assert_eq(f->element[3]->type, JQ_REPLY_OVERSIZED);
    cr_assert_eq(f->element[3]->integer, 20);
    cr_assert_null(f->element[3]->str);
    cr_assert_str_eq(f->element[4]->str, "owner");
    cr_assert_eq(f->element[5]->type, REDIS_REPLY_NIL);
    redisReply *g = entries->element[1]->element[1];
    cr_assert_eq(g->element[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(g->element[1]->integer, 5);
    /* Kept past the reply as a run keeps its entry: {NULL, length}. */
    void *mem = malloc(jq_reply_fields_size(f));
    jq_reply_fields_t *kept = jq_reply_fields_fill(mem, f);
    cr_assert_null(kept->f[3].p);
    cr_assert_eq(kept->f[3].len, 20);
    cr_assert_str_eq(kept->f[1].p, "noop");
    rd->fn->freeObject(r);
    jq_reply_fields_release(kept);
    free(mem);
}

Test(bulkcap, an_oversized_string_becomes_its_length_in_every_split) {
    for (size_t step = 1; step <= sizeof(xread); step++) {
        check_xread(feed(xread, sizeof(xread) - 1, step));
        cr_assert_eq(cap.skipped, step);
        cr_assert_eq(cap.skipped_bytes, 22 * (long long)step, "the string and its CRLF");
    }
}

Test(bulkcap, strings_up_to_the_cap_pass_whole) {
    static const char s[] = "*3\r\n$8\r\n12345678\r\n$0\r\n\r\n$-1\r\n";
    for (size_t step = 1; step <= sizeof(s); step++) {
        redisReply *r = feed(s, sizeof(s) - 1, step);
        cr_assert_not_null(r);
        cr_assert_str_eq(r->element[0]->str, "12345678");
        cr_assert_eq(r->element[1]->len, 0);
        cr_assert_eq(r->element[2]->type, REDIS_REPLY_NIL);
        rd->fn->freeObject(r);
    }
    cr_assert_eq(cap.skipped, 0);
}

Test(bulkcap, a_top_level_string_and_the_replies_after_it) {
    static const char s[] = "$9\r\n123456789\r\n+OK\r\n-ERR x\r\n:7\r\n";
    cr_assert_eq(jq_bulkcap_feed(&cap, rd, s, sizeof(s) - 1), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
    cr_assert_eq(((redisReply *)r)->type, JQ_REPLY_OVERSIZED);
    cr_assert_eq(((redisReply *)r)->integer, 9);
    rd->fn->freeObject(r);
    static const int types[] = {REDIS_REPLY_STATUS, REDIS_REPLY_ERROR, REDIS_REPLY_INTEGER};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
        cr_assert_eq(((redisReply *)r)->type, types[i]);
        rd->fn->freeObject(r);
    }
}

Test(bulkcap, off_passes_everything) {
    jq_bulkcap_init(&cap, 0);
    arena.marks = 0;
    redisReply *r = feed(xread, sizeof(xread) - 1, 7);
    cr_assert_eq(r->element[0]->element[1]->element[0]->element[1]->element[3]->len, 20);
    rd->fn->freeObject(r);
}

/* Lengths are checked as hiredis checks them, so that the cap never
 * loses step with the reader: what the reader refuses, it still refuses,
 * and "-1" is nil. */
Test(bulkcap, lengths_are_checked_as_hiredis_checks_them) {
    static const char *const bad[] = {
        "$x1\r\n", "$+3\r\nabc\r\n", "$0009\r\n123456789\r\n", "$2\rz\r\nab\r\n", "$-2\r\n",
        "$-0\r\n", "$\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReader *plain = redisReaderCreate();
        void *x = NULL;
        redisReaderFeed(plain, bad[i], strlen(bad[i]));
        cr_assert_eq(redisReaderGetReply(plain, &x), REDIS_ERR, "hiredis takes %s", bad[i]);
        redisReaderFree(plain);
        teardown();
        setup();
        cr_assert_eq(jq_bulkcap_feed(&cap, rd, bad[i], strlen(bad[i])), REDIS_OK);
        cr_assert_eq(redisReaderGetReply(rd, &x), REDIS_ERR, "the cap let %s through", bad[i]);
    }
    teardown();
    setup();
    static const char ok[] = "*3\r\n$-1\r\n$0\r\n\r\n$10\r\n0123456789\r\n";
    for (size_t step = 1; step <= sizeof(ok); step++) {
        redisReply *r = feed(ok, sizeof(ok) - 1, step);
        cr_assert_eq(r->element[0]->type, REDIS_REPLY_NIL);
        cr_assert_eq(r->element[1]->len, 0);
        cr_assert_eq(r->element[2]->type, JQ_REPLY_OVERSIZED);
        cr_assert_eq(r->element[2]->integer, 10);
        rd->fn->freeObject(r);
    }
}

/* Without marks (a connection that does not filter), a server's error
 * line that looks like the placeholder stays an error. */
Test(bulkcap, a_lookalike_error_is_an_error_without_marks) {
    arena.marks = 0;
    static const char s[] = "-" JQ_REPLY_OVERSIZED_MARK "5\r\n";
    cr_assert_eq(redisReaderFeed(rd, s, sizeof(s) - 1), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
    cr_assert_eq(((redisReply *)r)->type, REDIS_REPLY_ERROR);
    rd->fn->freeObject(r);
}
