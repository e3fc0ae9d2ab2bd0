/* watch.c: percentiles from the §7 latency buckets. The snapshot itself
 * is exercised against a real Redis by tests/integration/test_stats.py. */

#include <criterion/criterion.h>

#include "jobq/watch.h"

Test(watch, bounds_follow_the_protocol) {
    static const long long want[] = {1,   2,    5,    10,   25,    50,    100,  250,
                                     500, 1000, 2500, 5000, 10000, 30000, 60000};
    for (int i = 0; i < JQ_LAT_BUCKETS - 1; i++) cr_expect_eq(jq_latency_bound_ms(i), want[i]);
    cr_expect_eq(jq_latency_bound_ms(JQ_LAT_BUCKETS - 1), -1);
    cr_expect_eq(jq_latency_bound_ms(-1), -1);
}

Test(watch, empty_histogram_has_no_quantile) {
    jq_latency_t l = {0};
    cr_expect_eq(jq_latency_quantile(&l, 0.5), -1);
}

Test(watch, quantile_interpolates_inside_the_bucket) {
    jq_latency_t l = {0};
    /* 10 jobs in (0, 1], 10 in (10, 25]. */
    l.bucket[0] = 10;
    l.bucket[4] = 10;
    cr_expect_float_eq(jq_latency_quantile(&l, 0.25), 0.5, 1e-9);
    cr_expect_float_eq(jq_latency_quantile(&l, 0.5), 1.0, 1e-9);
    cr_expect_float_eq(jq_latency_quantile(&l, 0.75), 17.5, 1e-9);
    cr_expect_float_eq(jq_latency_quantile(&l, 0.99), 10 + 15 * 0.98, 1e-9);
}

Test(watch, quantile_in_the_inf_bucket_is_the_last_bound) {
    jq_latency_t l = {0};
    l.bucket[0] = 1;
    l.bucket[JQ_LAT_BUCKETS - 1] = 99;
    cr_expect_float_eq(jq_latency_quantile(&l, 0.5), 60000, 1e-9);
    cr_expect_float_eq(jq_latency_quantile(&l, 0.005), 0.5, 1e-9);
}
