/*
 * floor: the latency floor of compare.py's (b0), in C.
 *
 * The least a worker can do on jobq's keys for one job: a blocking
 * XREADGROUP on one hiredis connection, then the notify LPUSH and the XACK
 * written together and read together (one round trip). No event loop, no
 * parse of the entry, no result hash: whatever jobq's consumer adds on top
 * of this is its own cost, and what this costs is Redis's and the kernel's.
 * Node's responder (peer.js `floor`) stood here before; its own event loop
 * and ioredis's parse sat above the floor and made jobq read below it.
 *
 * Usage: floor PORT QUEUE    prints "ready" once its group exists, then
 *                            answers jobs until SIGTERM.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_term(int sig) {
    (void)sig;
    stopping = 1;
}

static void die(const char *what, redisContext *c) {
    fprintf(stderr, "floor: %s: %s\n", what, c && c->err ? c->errstr : "bad reply");
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor PORT QUEUE\n");
        return 2;
    }
    char stream[256];
    snprintf(stream, sizeof(stream), "jobq:{%s}:stream", argv[2]);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term; /* no SA_RESTART: the blocking read returns */
    sigaction(SIGTERM, &sa, NULL);

    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) die("connect", c);
    redisReply *r = redisCommand(c, "XGROUP CREATE %s workers $ MKSTREAM", stream);
    if (!r) die("XGROUP", c);
    freeReplyObject(r); /* BUSYGROUP when it exists: fine */
    printf("ready\n");
    fflush(stdout);

    while (!stopping) {
        r = redisCommand(c, "XREADGROUP GROUP workers floor COUNT 1 BLOCK 200 STREAMS %s >",
                         stream);
        if (!r) {
            if (stopping) break;
            die("XREADGROUP", c);
        }
        /* [[stream, [[id, [f, v, ...]], ...]]] or nil on timeout */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                const char *id = entries->element[i]->element[0]->str;
                char notify[300];
                snprintf(notify, sizeof(notify), "jobq:{%s}:notify:%s", argv[2], id);
                redisAppendCommand(c, "LPUSH %s done", notify);
                redisAppendCommand(c, "XACK %s workers %s", stream, id);
                for (int k = 0; k < 2; k++) {
                    redisReply *a;
                    if (redisGetReply(c, (void **)&a) != REDIS_OK) die("LPUSH/XACK", c);
                    freeReplyObject(a);
                }
            }
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}
