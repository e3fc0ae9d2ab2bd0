#ifndef JQ_TEST_REDIS_FIXTURE_H
#define JQ_TEST_REDIS_FIXTURE_H

/* A throwaway redis-server for one unit test (on a free loopback port,
 * stopped by its pid, as hiredis' `make check` does) and a libjobq client
 * `cl` on it with prefix "t"; cmd() runs a raw command on that client's
 * connection. Included by the test files that talk to Redis:
 *   TestSuite(x, .init = start_redis, .fini = stop_redis); */

#include <criterion/criterion.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "jobq/jobq.h"

static pid_t redis_pid;
static int redis_port;
static char redis_url[64];
static jq_client_t *cl;
static char err[JQ_ERR_LEN];

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void start_redis(void) {
    redis_port = free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d", redis_port);
    for (int i = 0; i < 100 && !cl; i++) {
        cl = jq_client_new(redis_url, "t", err, sizeof(err));
        if (!cl) usleep(50000);
    }
    cr_assert(cl, "redis-server did not start: %s", err);
}

static void stop_redis(void) {
    jq_client_free(cl);
    cl = NULL;
    kill(redis_pid, SIGTERM);
    waitpid(redis_pid, NULL, 0);
}

/* Runs a command on the client's own connection; the caller frees. */
static redisReply *cmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(jq_client_context(cl), fmt, ap);
    va_end(ap);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "command failed: %s", fmt);
    return r;
}

static long long cmd_int(const char *fmt, const char *arg) {
    redisReply *r = cmd(fmt, arg);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

#endif
