/* bench-seed: what a new CPU thread costs jobq. Starts a one-thread
 * jq_pool (consumer/worker/pool.c, the pool every worker runs), submits one empty
 * item and times jq_pool_init -> that item's done callback on the loop, then
 * closes the pool; N times. Prints the times in microseconds, one a line.
 * Usage: pool_start [N] */

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "pool.h"

static uint64_t done_ns;
static int closed;

static void on_work(jq_pool_item_t *it) { (void)it; }

static void on_done(jq_pool_item_t *it) {
    (void)it;
    done_ns = uv_hrtime();
}

static void on_closed(jq_pool_t *p) {
    (void)p;
    closed = 1;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    uv_loop_t loop;
    char err[256];

    if (n < 1 || uv_loop_init(&loop) != 0) return 2;
    for (int i = 0; i < n; i++) {
        jq_pool_t pool;
        jq_pool_item_t item = {.work = on_work, .done = on_done};
        done_ns = 0;
        closed = 0;
        uint64_t t0 = uv_hrtime();
        if (jq_pool_init(&pool, &loop, 1, err, sizeof err) != 0) {
            fprintf(stderr, "pool_start: %s\n", err);
            return 1;
        }
        jq_pool_submit(&pool, &item);
        while (done_ns == 0) uv_run(&loop, UV_RUN_ONCE);
        printf("%.1f\n", (double)(done_ns - t0) / 1000.0);
        jq_pool_close(&pool, on_closed);
        while (!closed) uv_run(&loop, UV_RUN_ONCE);
    }
    uv_loop_close(&loop);
    return 0;
}
