/* Tests of consumer/worker/trim.c's pure parts: id order and the answer that moves the bound. */

#include <criterion/criterion.h>
#include <string.h>

#include "trim.h"

Test(trim, ids_compare_as_redis_orders_them) {
    cr_assert_lt(jq_trim_id_cmp("1-0", "1-1"), 0);
    cr_assert_lt(jq_trim_id_cmp("999-5", "1000-0"), 0, "numbers, not strings");
    cr_assert_lt(jq_trim_id_cmp("1795966214268-9", "1795966214268-10"), 0);
    cr_assert_gt(jq_trim_id_cmp("1795966214269-0", "1795966214268-99"), 0);
    cr_assert_eq(jq_trim_id_cmp("5-5", "5-5"), 0);
    cr_assert_lt(jq_trim_id_cmp("18446744073709551614-0", "18446744073709551615-0"), 0);
}

/* XPENDING stream group - + 1: [[id, consumer, idle, deliveries]] or []. */
static redisReply *pending(redisReply *top, redisReply **el, redisReply *entry, redisReply **fel,
                           redisReply *f, const char *id) {
    memset(f, 0, 4 * sizeof(*f));
    f[0].type = REDIS_REPLY_STRING, f[0].str = (char *)id, f[0].len = strlen(id);
    f[1].type = REDIS_REPLY_STRING, f[1].str = "w", f[1].len = 1;
    f[2].type = REDIS_REPLY_INTEGER, f[3].type = REDIS_REPLY_INTEGER;
    for (int i = 0; i < 4; i++) fel[i] = &f[i];
    *entry = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 4, .element = fel};
    el[0] = entry;
    *top = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = id[0] ? 1 : 0, .element = el};
    return top;
}

Test(trim, the_answer_moves_the_bound_forward_only) {
    static jq_trim_t t; /* the answer reads nothing of env */
    redisReply top, *el[1], entry, *fel[4], f[4];
    cr_assert_str_eq(jq_trim_answer(&t, 0, pending(&top, el, &entry, fel, f, "7-1"), "9-3"), "7-1");
    cr_assert_str_eq(t.bound[0], "7-1", "below the oldest pending entry, all acked");
    cr_assert_null(jq_trim_answer(&t, 0, pending(&top, el, &entry, fel, f, ""), "9-3"),
                   "nothing pending");
    cr_assert_str_eq(t.bound[0], "9-4", "up to and including the batch's newest");
    jq_trim_answer(&t, 0, pending(&top, el, &entry, fel, f, "8-0"), "8-0");
    cr_assert_str_eq(t.bound[0], "9-4", "an answer that came late never moves it back");
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "NOGROUP", .len = 7};
    cr_assert_null(jq_trim_answer(&t, 1, &err, "9-9"));
    cr_assert_null(jq_trim_answer(&t, 1, NULL, "9-9"));
    cr_assert_str_eq(t.bound[1], "", "an error teaches nothing");
    jq_trim_answer(&t, 1, pending(&top, el, &entry, fel, f, ""), "5-18446744073709551615");
    cr_assert_str_eq(t.bound[1], "6-0");
    cr_assert_str_eq(t.bound[0], "9-4", "queues apart");
}
