/* Unit tests of common/keys.c: the key names of PROTOCOL.md. */

#include <criterion/criterion.h>
#include <string.h>

#include "keys.h"

Test(keys, queue_keys_carry_the_hash_tag) {
    char buf[JQ_KEY_MAX];
    cr_expect_eq(jq_key(buf, sizeof(buf), "jobq", "emails", "stream"),
                 (int)strlen("jobq:{emails}:stream"));
    cr_expect_str_eq(buf, "jobq:{emails}:stream");
    jq_key(buf, sizeof(buf), JQ_PREFIX_DEFAULT, "q", "scheduled");
    cr_expect_str_eq(buf, "jobq:{q}:scheduled");
    jq_key(buf, sizeof(buf), "app", "a.b:c-d_e", "dead");
    cr_expect_str_eq(buf, "app:{a.b:c-d_e}:dead");
}

Test(keys, id_keys) {
    char buf[JQ_KEY_MAX];
    cr_expect_eq(jq_key_id(buf, sizeof(buf), "jobq", "q", "result", "1-0"),
                 (int)strlen("jobq:{q}:result:1-0"));
    cr_expect_str_eq(buf, "jobq:{q}:result:1-0");
    jq_key_id(buf, sizeof(buf), "jobq", "q", "job", "my-id");
    cr_expect_str_eq(buf, "jobq:{q}:job:my-id");
    jq_key_id(buf, sizeof(buf), "jobq", "q", "payload", "x");
    cr_expect_str_eq(buf, "jobq:{q}:payload:x");
    jq_key_id(buf, sizeof(buf), "jobq", "q", "notify", "x");
    cr_expect_str_eq(buf, "jobq:{q}:notify:x");
}

Test(keys, global_keys_have_no_tag) {
    char buf[JQ_KEY_MAX];
    cr_expect_eq(jq_key_global(buf, sizeof(buf), "jobq", "workers"), 12);
    cr_expect_str_eq(buf, "jobq:workers");
    jq_key_global(buf, sizeof(buf), "jobq", "worker:host:42");
    cr_expect_str_eq(buf, "jobq:worker:host:42");
}

Test(keys, overflow_returns_minus_one) {
    char buf[32];
    const char *want = "jobq:{q}:stream"; /* 15 bytes */

    cr_expect_eq(jq_key(buf, 16, "jobq", "q", "stream"), 15);
    cr_expect_str_eq(buf, want);
    cr_expect_eq(jq_key(buf, 15, "jobq", "q", "stream"), -1);
    cr_expect_eq(jq_key(buf, 1, "jobq", "q", "stream"), -1);
    cr_expect_eq(jq_key_id(buf, 18, "jobq", "q", "job", "abc"), 16);
    cr_expect_eq(jq_key_id(buf, 16, "jobq", "q", "job", "abc"), -1);
    cr_expect_eq(jq_key_global(buf, 12, "jobq", "workers"), -1);
    cr_expect_eq(jq_key_global(buf, 13, "jobq", "workers"), 12);
}

Test(keys, longest_names_fit_in_key_max) {
    char buf[JQ_KEY_MAX], name[JQ_NAME_MAX + 1];
    memset(name, 'n', JQ_NAME_MAX);
    name[JQ_NAME_MAX] = '\0';
    cr_expect_gt(jq_key_id(buf, sizeof(buf), "jobq", name, "result", name), 0);
    cr_expect_gt(jq_key(buf, sizeof(buf), "jobq", name, "payload"), 0);
}

Test(keys, name_validation) {
    char name[JQ_NAME_MAX + 2];
    cr_expect(jq_name_valid("emails", 6));
    cr_expect(jq_name_valid("A-z_0.9:x", 9));
    cr_expect(!jq_name_valid("", 0));
    cr_expect(!jq_name_valid("a b", 3));
    cr_expect(!jq_name_valid("a{b}", 4));
    cr_expect(!jq_name_valid("a/b", 3));
    cr_expect(!jq_name_valid("a*", 2));
    cr_expect(!jq_name_valid("\xc3\xa9", 2));
    cr_expect(!jq_name_valid("a\0b", 3));
    /* Only len bytes count. */
    cr_expect(jq_name_valid("ab cd", 2));

    memset(name, 'x', sizeof(name));
    cr_expect(jq_name_valid(name, JQ_NAME_MAX));
    cr_expect(!jq_name_valid(name, JQ_NAME_MAX + 1));
}

Test(keys, schedule_keys) {
    char buf[JQ_KEY_MAX];
    cr_expect_eq(jq_key_schedule(buf, sizeof(buf), "jobq", "q", "nightly", 0),
                 (int)strlen("jobq:{q}:schedule:nightly"));
    cr_expect_str_eq(buf, "jobq:{q}:schedule:nightly");
    jq_key_schedule(buf, sizeof(buf), "jobq", "q", "nightly", 1);
    cr_expect_str_eq(buf, "jobq:{q}:schedule:nightly:job");
    cr_expect(jq_schedule_name_valid("nightly-report_2.v1"));
    cr_expect(!jq_schedule_name_valid("a:job"));
    cr_expect(!jq_schedule_name_valid(""));
    cr_expect(!jq_schedule_name_valid("with space"));
    char long_name[JQ_SCHEDULE_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    cr_expect(!jq_schedule_name_valid(long_name));
    long_name[JQ_SCHEDULE_NAME_MAX] = '\0';
    cr_expect(jq_schedule_name_valid(long_name));
}
