#ifndef JQ_FAKE_RCONN_H
#define JQ_FAKE_RCONN_H

/* A stand-in for consumer/redis/rconn.c in unit tests of the worker's stages
 * (fetch.c, reclaim.c): it sends nothing, records each command with a copy
 * of its argv, and lets the test answer it with a reply built by hand, as
 * hiredis would (the callback gets the reply, which is freed when it
 * returns, and an ac whose data is the connection).
 *
 * A command is sent only on a connection whose `up` is set, as with the
 * real one. Linked instead of rconn.o (see the Makefile's rule for
 * test_fetch). */

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "rconn.h"

#define FAKE_CMDS_MAX 256

typedef struct fake_cmd {
    jq_rconn_t *c;
    int argc;
    char **argv;     /* copies, NUL-terminated */
    char line[1024]; /* the argv joined by spaces (cut), for asserts */
    redisCallbackFn *fn;
    void *priv;
    int answered;
} fake_cmd_t;

extern fake_cmd_t fake_cmds[FAKE_CMDS_MAX];
extern int fake_ncmds;

/* Answers every command not answered yet with NULL (the connection was
 * lost: what their callbacks carried is freed), then forgets them all. A
 * test's teardown sets the worker stopping and its connections down first,
 * so that no callback sends again. */
void fake_rconn_reset(void);
/* The index of the last command sent on c (NULL: any) whose line starts
 * with prefix, or -1. */
int fake_rconn_find(const jq_rconn_t *c, const char *prefix);
/* How many commands sent on c (NULL: any) start with prefix. */
int fake_rconn_count(const jq_rconn_t *c, const char *prefix);
/* Answers command i with reply (owned: freed after the callback, as
 * hiredis does; NULL: the connection was lost). */
void fake_rconn_answer(int i, redisReply *reply);

/* Replies built by hand, on the heap, freed by freeReplyObject. */
redisReply *fake_str(const char *s);
redisReply *fake_err(const char *s);
redisReply *fake_int(long long v);
redisReply *fake_nil(void);
/* An array of n elements, taken from the arguments (owned). */
redisReply *fake_arr(size_t n, ...);
/* An entry's field array of n strings (the arguments, copied). */
redisReply *fake_fields(size_t n, ...);

#endif
