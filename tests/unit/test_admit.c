/* Tests of consumer/worker/admit.c: the COUNTs a worker reads by kind and limit. */

#include <criterion/criterion.h>

#include "admit.h"

#define IO JQ_KIND_IO
#define CPU JQ_KIND_CPU

static void learn(jq_admit_t *a, int q, jq_kind_t k, int n) {
    for (int i = 0; i < n; i++) jq_admit_learn(a, q, k);
}

Test(admit, kinds_are_learned_from_recent_jobs) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 3, NULL);
    cr_assert_eq(jq_admit_qkind(&a, 0), JQ_QKIND_UNKNOWN);
    learn(&a, 0, IO, 3);
    learn(&a, 1, CPU, 2);
    learn(&a, 2, IO, 1);
    learn(&a, 2, CPU, 1);
    cr_assert_eq(jq_admit_qkind(&a, 0), JQ_QKIND_IO);
    cr_assert_eq(jq_admit_qkind(&a, 1), JQ_QKIND_CPU);
    cr_assert_eq(jq_admit_qkind(&a, 2), JQ_QKIND_MIXED);
    /* 64 cpu jobs later the io one is forgotten. */
    learn(&a, 2, CPU, 64);
    cr_assert_eq(jq_admit_qkind(&a, 2), JQ_QKIND_CPU);
    cr_assert_str_eq(jq_admit_qkind_name(JQ_QKIND_MIXED), "mixed");
}

Test(admit, io_queue_is_read_while_the_pool_is_full) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, NULL);
    learn(&a, 0, IO, 1);
    learn(&a, 1, CPU, 1);
    for (int i = 0; i < 4; i++) jq_admit_hold(&a, 1, CPU, 1);
    jq_admit_read_t rd;
    long long n = jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[0], 64);
    cr_assert_eq(rd.count[1], 0, "the cpu queue is not read with the pool full");
    cr_assert_eq(n, 64);
    /* Reserved until the reply is in: a second plan gets nothing. */
    jq_admit_read_t rd2;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd2), 0);
    jq_admit_unreserve(&a, &rd);
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd2), 64);
}

Test(admit, cpu_queue_gets_the_free_cpu_slots) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, NULL);
    learn(&a, 0, IO, 1);
    learn(&a, 1, CPU, 1);
    jq_admit_hold(&a, 1, CPU, 1);
    jq_admit_read_t rd;
    jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[1], 3);
    cr_assert_eq(rd.count[0], 64);
}

Test(admit, mixed_queue_takes_the_smaller_share) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 1, NULL);
    learn(&a, 0, IO, 1);
    learn(&a, 0, CPU, 1);
    jq_admit_read_t rd;
    jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[0], 4);
    jq_admit_unreserve(&a, &rd);
    for (int i = 0; i < 4; i++) jq_admit_hold(&a, 0, CPU, 1);
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 0, "FIFO: not read with the pool full");
}

Test(admit, unknown_queue_gets_one_entry_with_the_pool_full) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, NULL);
    learn(&a, 1, CPU, 1);
    for (int i = 0; i < 4; i++) jq_admit_hold(&a, 1, CPU, 1);
    jq_admit_read_t rd;
    jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[0], 1);
    cr_assert_eq(rd.count[1], 0);
}

Test(admit, per_queue_limit_caps_what_is_held) {
    long long limits[] = {3, 0};
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, limits);
    learn(&a, 0, IO, 1);
    learn(&a, 1, IO, 1);
    jq_admit_hold(&a, 0, IO, 1);
    jq_admit_read_t rd;
    jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[0], 2);
    cr_assert_eq(rd.count[1], 61, "the slots a limit leaves go to the others");
    jq_admit_unreserve(&a, &rd);
    jq_admit_hold(&a, 0, IO, 2);
    jq_admit_plan(&a, NULL, 0, 0, &rd);
    cr_assert_eq(rd.count[0], 0, "at its limit");
    cr_assert_eq(rd.count[1], 61);
    cr_assert_eq(jq_admit_free(&a, 0), 0);
}

Test(admit, ahead_counts_sent_acks_as_free) {
    jq_admit_t a;
    jq_admit_init(&a, 8, 2, 1, NULL);
    learn(&a, 0, IO, 1);
    for (int i = 0; i < 8; i++) jq_admit_hold(&a, 0, IO, 1);
    for (int i = 0; i < 5; i++) jq_admit_sent(&a, 0, IO, 1);
    jq_admit_read_t rd;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 0);
    cr_assert_eq(jq_admit_plan(&a, NULL, 1, 0, &rd), 5);
}

Test(admit, same_count_takes_the_smallest_and_skip_leaves_out) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 3, NULL);
    learn(&a, 0, IO, 1);
    learn(&a, 1, CPU, 1);
    learn(&a, 2, IO, 1);
    int skip[] = {0, 0, 1};
    jq_admit_read_t rd;
    long long n = jq_admit_plan(&a, skip, 0, 1, &rd);
    cr_assert_eq(rd.count[0], 4);
    cr_assert_eq(rd.count[1], 4);
    cr_assert_eq(rd.count[2], 0);
    cr_assert_eq(n, 8);
}

Test(admit, fewer_slots_than_queues_rotate) {
    jq_admit_t a;
    jq_admit_init(&a, 1, 2, 3, NULL);
    for (int q = 0; q < 3; q++) learn(&a, q, IO, 1);
    int got[3] = {0};
    for (int i = 0; i < 3; i++) {
        jq_admit_read_t rd;
        cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 1);
        for (int q = 0; q < 3; q++) got[q] += (int)rd.count[q];
        jq_admit_unreserve(&a, &rd);
    }
    for (int q = 0; q < 3; q++) cr_assert_eq(got[q], 1, "queue %d starved or favoured", q);
}

Test(admit, reclaim_room_ignores_the_blocking_read) {
    jq_admit_t a;
    jq_admit_init(&a, 8, 2, 1, NULL);
    learn(&a, 0, IO, 1);
    jq_admit_read_t rd;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 1, &rd), 8);
    cr_assert_eq(jq_admit_free(&a, 0), 8, "a read in flight must not stop reclaim");
    for (int i = 0; i < 8; i++) jq_admit_hold(&a, 0, IO, 1);
    cr_assert_eq(jq_admit_free(&a, 0), 0);
}

Test(admit, read_ahead_counts_finished_entries_within_its_bound) {
    jq_admit_t a;
    jq_admit_init(&a, 8, 2, 1, NULL);
    learn(&a, 0, IO, 1);
    for (int i = 0; i < 8; i++) jq_admit_hold(&a, 0, IO, 1);
    for (int i = 0; i < 6; i++) jq_admit_finished(&a, IO, 1);
    jq_admit_read_t rd;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 0, "strict by default");
    jq_admit_set_read_ahead(&a, 4);
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 4, "bounded by read_ahead");
    jq_admit_unreserve(&a, &rd);
    jq_admit_set_read_ahead(&a, 100);
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 6, "never more than finished");
}

/* --max-payload bounds what one read brings (worker.h): read_max entries,
 * all its queues together; the slots it leaves stay for another read. */
Test(admit, read_max_bounds_one_read_over_its_queues) {
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, NULL);
    learn(&a, 0, IO, 1);
    learn(&a, 1, IO, 1);
    jq_admit_set_read_max(&a, 32);
    jq_admit_read_t rd, rd2;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 32);
    cr_assert_eq(rd.count[0], 16);
    cr_assert_eq(rd.count[1], 16);
    cr_assert_eq(jq_admit_plan(&a, NULL, 1, 1, &rd2), 32, "a read aside gets the rest");
    jq_admit_unreserve(&a, &rd);
    jq_admit_unreserve(&a, &rd2);
    jq_admit_set_read_max(&a, 1);
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 1, &rd), 2, "at least one entry a queue");
    jq_admit_unreserve(&a, &rd);
    cr_assert_eq(jq_admit_plan(&a, NULL, 1, 0, &rd), 64,
                 "a read behind the acks takes the free slots, whatever read_max");
}

Test(admit, capacity_is_both_kinds_of_slots_within_the_limit) {
    long long limits[] = {3, 0};
    jq_admit_t a;
    jq_admit_init(&a, 64, 4, 2, limits);
    cr_assert_eq(jq_admit_capacity(&a, 0), 3, "the queue's limit");
    cr_assert_eq(jq_admit_capacity(&a, 1), 68, "io plus cpu slots");
    jq_admit_hold(&a, 1, JQ_KIND_IO, 10);
    cr_assert_eq(jq_admit_capacity(&a, 1), 68, "what is held does not count");
    cr_assert_eq(jq_admit_acking(&a), 0);
    jq_admit_sent(&a, 1, JQ_KIND_IO, 2);
    jq_admit_sent(&a, 0, JQ_KIND_CPU, 1);
    cr_assert_eq(jq_admit_acking(&a), 3, "acks on their way, of both kinds");
}

Test(admit, weights_split_the_free_slots_by_share) {
    jq_admit_t a;
    long long w[2] = {3, 1};
    jq_admit_init(&a, 8, 4, 2, NULL);
    jq_admit_set_weights(&a, w, 2);
    jq_admit_learn(&a, 0, JQ_KIND_IO);
    jq_admit_learn(&a, 1, JQ_KIND_IO);
    jq_admit_read_t rd;
    cr_assert_eq(jq_admit_plan(&a, NULL, 0, 0, &rd), 8);
    cr_assert_eq(rd.count[0], 6);
    cr_assert_eq(rd.count[1], 2);
}
