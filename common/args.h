#ifndef JQ_ARGS_H
#define JQ_ARGS_H

/* The one Redis argv builder, shared by libjobq and the consumer: a
 * command as argv + lengths, for redisCommandArgv / redisAsyncCommandArgv,
 * so no command is formatted through printf and binary values pass as
 * they are.
 *
 * Strings added with jq_args_add/jq_args_str are borrowed and must outlive
 * the command's sending; jq_args_dup/jq_args_ll copy theirs into the
 * builder's own blocks (no malloc per copy once warm), valid until
 * jq_args_reset/jq_args_destroy. Out of memory is remembered in `oom` and
 * reported when the command is sent, so callers add without checking.
 * jq_args_reset keeps the memory, so one builder embedded in a long-lived
 * owner serves every command without allocating once warm. */

#include <stddef.h>

struct jq_args_block;

typedef struct jq_args {
    const char **argv;
    size_t *lens;
    int argc, cap;
    struct jq_args_block *blocks; /* the copies; never moved once written */
    int oom;
} jq_args_t;

void jq_args_init(jq_args_t *a);
void jq_args_destroy(jq_args_t *a);
/* Drops the arguments (keeps the memory) so a builder serves many commands. */
void jq_args_reset(jq_args_t *a);
void jq_args_add(jq_args_t *a, const char *s, size_t len);
void jq_args_str(jq_args_t *a, const char *s);
void jq_args_dup(jq_args_t *a, const char *s, size_t len);
void jq_args_ll(jq_args_t *a, long long v);
/* Appends every argument of src to a (borrowed: src must not be reset
 * before a's command is sent). */
void jq_args_cat(jq_args_t *a, const jq_args_t *src);
/* Writes v in decimal into buf (at least 21 bytes), without printf;
 * returns its length. */
int jq_ll2str(char *buf, long long v);

#endif
