/* Tests of consumer/worker/trim.c's pure parts: id order and the EXEC answer. */

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

Test(trim, the_answer_is_the_one_string_of_the_exec_reply) {
    redisReply ints[3], str, *el[4];
    memset(ints, 0, sizeof(ints));
    memset(&str, 0, sizeof(str));
    for (int i = 0; i < 3; i++) ints[i].type = REDIS_REPLY_INTEGER;
    str.type = REDIS_REPLY_STRING;
    str.str = "7-1";
    str.len = 3;
    el[0] = &ints[0];
    el[1] = &ints[1];
    el[2] = &str;
    el[3] = &ints[2];
    redisReply exec = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = el};
    cr_assert_str_eq(jq_trim_answer(&exec), "7-1");
    str.type = REDIS_REPLY_NIL;
    cr_assert_null(jq_trim_answer(&exec), "nil: everything was trimmed");
    cr_assert_null(jq_trim_answer(NULL));
}
