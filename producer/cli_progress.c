/* `jobq wait` while the job runs: its progress (docs/PROTOCOL.md §14),
 * read from the result hash between slices of the wait, drawn as a bar on
 * a terminal (stderr), or as plain lines when stderr is not one, one per
 * change. stdout keeps only the result. A job that reports no progress
 * draws nothing. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis.h>

#include "cli.h"
#include "client_int.h"
#include "job.h"

#define SLICE_MS 250 /* a bar that moves, without polling Redis hard */
#define BAR_WIDTH 30

typedef struct shown {
    int tty, drawn;
    char last[300];
} shown_t;

/* The job's progress now: 1 with *fraction and msg filled, 0 when it
 * reports none (or is not running). */
static int read_progress(jq_cli_t *cli, const char *queue, const char *id, double *fraction,
                         char *msg, size_t cap) {
    /* Through libjobq, so that it is routed in Redis Cluster and works
     * over TLS. */
    char why[JQ_KEY_MAX];
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "HMGET");
    jq_args_key(&a, cli->client, queue, "result", id);
    jq_args_str(&a, "state");
    jq_args_str(&a, "progress");
    jq_args_str(&a, "progress_msg");
    redisReply *r = jq_client_run(cli->client, &a, why, sizeof(why));
    jq_args_destroy(&a);
    int got = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && !strcmp(r->element[0]->str, "running") &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        *fraction = atof(r->element[1]->str);
        snprintf(msg, cap, "%s",
                 r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "");
        got = 1;
    }
    if (r) freeReplyObject(r);
    return got;
}

static void draw(shown_t *s, double fraction, const char *msg) {
    char line[sizeof(s->last)];
    int pct = (int)(fraction * 100 + 0.5);
    if (s->tty) {
        char bar[BAR_WIDTH + 1];
        int full = (int)(fraction * BAR_WIDTH + 0.5);
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < full ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        snprintf(line, sizeof(line), "[%s] %3d%% %.200s", bar, pct, msg);
    } else {
        snprintf(line, sizeof(line), "progress %.4g %.200s", fraction, msg);
    }
    if (!strcmp(line, s->last)) return;
    snprintf(s->last, sizeof(s->last), "%s", line);
    if (s->tty)
        fprintf(stderr, "\r\033[K%s", line);
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
    s->drawn = 1;
}

int jq_cli_wait_progress(jq_cli_t *cli, const char *queue, const char *id, long long timeout_ms,
                         unsigned flags, jq_result_t *r, char *err, size_t errlen) {
    shown_t s = {isatty(2), 0, ""};
    long long deadline = (long long)jq_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc;
    for (;;) {
        long long left = deadline - (long long)jq_now_ms();
        long long slice = left < SLICE_MS ? left : SLICE_MS;
        jq_result_destroy(r);
        rc = jq_client_wait_flags(cli->client, queue, id, slice > 0 ? slice : 0, flags, r, err,
                                  errlen);
        if (rc != JQ_CLIENT_ETIMEOUT || left <= SLICE_MS) break;
        double fraction;
        char msg[256];
        if (read_progress(cli, queue, id, &fraction, msg, sizeof(msg))) draw(&s, fraction, msg);
    }
    if (s.drawn && s.tty) fputs("\r\033[K", stderr); /* the bar gives way to the result */
    return rc;
}
