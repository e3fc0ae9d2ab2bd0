/* Unit tests of common/sentinel.c: reading ROLE and READONLY, and a
 * resolution whose sentinels are all down or are not sentinels. The
 * failover itself is tests/integration/test_sentinel.py's. */

#include <criterion/criterion.h>
#include <string.h>

#include "sentinel.h"

static redisReply str(const char *s) {
    redisReply r = {.type = REDIS_REPLY_STRING, .str = (char *)s, .len = strlen(s)};
    return r;
}

Test(sentinel, role) {
    char why[128] = "";
    redisReply role = str("master"), *el[] = {&role};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = el};
    cr_expect_eq(jq_sentinel_role_ok(&arr, why, sizeof(why)), 1);
    role = str("slave");
    cr_expect_eq(jq_sentinel_role_ok(&arr, why, sizeof(why)), 0);
    cr_expect_str_eq(why, "says role slave, not master");
    /* An ACL user without ROLE: the sentinels' word stands. */
    redisReply noperm = {.type = REDIS_REPLY_ERROR, .str = "NOPERM no", .len = 9};
    cr_expect_eq(jq_sentinel_role_ok(&noperm, why, sizeof(why)), 1);
    redisReply empty = {.type = REDIS_REPLY_ARRAY};
    cr_expect_eq(jq_sentinel_role_ok(&empty, why, sizeof(why)), 0);
}

Test(sentinel, not_master) {
    const char *ro = "READONLY You can't write against a read only replica.";
    cr_expect_eq(jq_sentinel_not_master(ro, strlen(ro)), 8);
    /* Redis 7's end of a blocked XREADGROUP when its master is demoted. */
    const char *ub = "UNBLOCKED force unblock from blocking operation, instance state changed "
                     "(master -> replica?)";
    cr_expect_eq(jq_sentinel_not_master(ub, strlen(ub)), 9);
    cr_expect_eq(jq_sentinel_not_master("MASTERDOWN Link with MASTER is down", 35), 10);
    cr_expect_eq(jq_sentinel_not_master("LOADING", 7), 7);
    cr_expect_eq(jq_sentinel_not_master("READON", 6), 0);
    cr_expect_eq(jq_sentinel_not_master("READONLYX", 9), 0);
    cr_expect_eq(jq_sentinel_not_master("ERR READONLY", 12), 0);
    cr_expect_eq(jq_sentinel_not_master("BUSYGROUP x", 11), 0);
}

Test(sentinel, all_down) {
    jq_url_t u;
    char err[512];
    /* Ports 1 and 2 of loopback: nothing listens there. */
    cr_assert_eq(jq_url_parse("redis+sentinel://127.0.0.1:1,127.0.0.1:2/m", &u, err, sizeof(err)),
                 0);
    jq_url_addr_t a;
    int next = 1;
    cr_expect_eq(jq_sentinel_resolve(&u, NULL, 200, &next, &a, err, sizeof(err)), JQ_SENTINEL_DOWN);
    /* Asked from the second on, each named with what it said. */
    cr_expect(strncmp(err, "127.0.0.1:2: Connection refused; 127.0.0.1:1: ", 46) == 0, "%s", err);
    cr_expect_eq(next, 1);
}
