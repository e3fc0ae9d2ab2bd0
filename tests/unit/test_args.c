/* Tests of common/args.c: the argv builder's copies and numbers. */

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

Test(args, numbers_are_written_as_printf_would) {
    long long vals[] = {0,
                        7,
                        -7,
                        9,
                        10,
                        -10,
                        99,
                        100,
                        -100,
                        101,
                        999,
                        1000,
                        12345,
                        99999,
                        100000,
                        1795722457315LL,
                        999999999999999999LL,
                        1000000000000000000LL,
                        LLONG_MAX,
                        LLONG_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char got[24], want[32];
        int n = jq_ll2str(got, vals[i]);
        snprintf(want, sizeof(want), "%lld", vals[i]);
        cr_assert_str_eq(got, want);
        cr_assert_eq(n, (int)strlen(want));
    }
}

Test(args, numbers_at_every_digit_count_are_written_as_printf_would) {
    unsigned long long p = 1;
    for (int d = 1; d <= 19; d++, p *= 10) {
        long long around[] = {(long long)p - 1, (long long)p,      (long long)p + 1,
                              -(long long)p,    -(long long)p + 1, (long long)(p * 7 + 3)};
        for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
            char got[24], want[32];
            int n = jq_ll2str(got, around[i]);
            snprintf(want, sizeof(want), "%lld", around[i]);
            cr_assert_str_eq(got, want);
            cr_assert_eq(n, (int)strlen(want));
        }
    }
}

Test(args, copies_stay_put_while_more_are_added) {
    jq_args_t a;
    jq_args_init(&a);
    char buf[64];
    /* Enough copies to need several blocks, and one larger than a block. */
    for (int i = 0; i < 2000; i++) {
        snprintf(buf, sizeof(buf), "key:%d", i);
        jq_args_dup(&a, buf, strlen(buf));
    }
    static char big[100000];
    memset(big, 'x', sizeof(big));
    jq_args_dup(&a, big, sizeof(big));
    jq_args_ll(&a, -42);
    cr_assert_eq(a.argc, 2002);
    cr_assert_not(a.oom);
    for (int i = 0; i < 2000; i++) {
        snprintf(buf, sizeof(buf), "key:%d", i);
        cr_assert_eq(a.lens[i], strlen(buf));
        cr_assert_str_eq(a.argv[i], buf);
    }
    cr_assert_eq(a.lens[2000], sizeof(big));
    cr_assert_eq(memcmp(a.argv[2000], big, sizeof(big)), 0);
    cr_assert_str_eq(a.argv[2001], "-42");
    /* A reset keeps the blocks for the next command. */
    jq_args_reset(&a);
    cr_assert_eq(a.argc, 0);
    jq_args_dup(&a, "again", 5);
    cr_assert_str_eq(a.argv[0], "again");
    jq_args_destroy(&a);
}

Test(args, cat_appends_another_builders_arguments) {
    jq_args_t a, b;
    jq_args_init(&a);
    jq_args_init(&b);
    jq_args_str(&a, "EVAL");
    jq_args_str(&b, "k1");
    jq_args_ll(&b, 5);
    jq_args_cat(&a, &b);
    cr_assert_eq(a.argc, 3);
    cr_assert_str_eq(a.argv[1], "k1");
    cr_assert_str_eq(a.argv[2], "5");
    cr_assert_eq(a.lens[2], 1);
    b.oom = 1;
    jq_args_cat(&a, &b);
    cr_assert(a.oom, "a builder that ran out of memory taints the command");
    jq_args_destroy(&a);
    jq_args_destroy(&b);
}
