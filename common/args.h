#ifndef JQ_ARGS_H
#define JQ_ARGS_H

/* The one Redis argv builder, shared by libjobq and the consumer: a
 * command as argv + lengths, for redisCommandArgv / redisAsyncCommandArgv,
 * so no command is formatted through printf and binary values pass as
 * they are.
 *
 * Strings added with jq_args_add/jq_args_str are borrowed and must outlive
 * the command's sending; jq_args_dup/jq_args_ll copy theirs, freed by
 * jq_args_reset/jq_args_destroy. Out of memory is remembered in `oom` and
 * reported when the command is sent, so callers add without checking.
 * jq_args_reset keeps the memory, so one builder embedded in a long-lived
 * owner serves every command without allocating once warm. */

#include <stddef.h>

typedef struct jq_args {
    const char **argv;
    size_t *lens;
    int argc, cap;
    char **owned;
    int nowned, owned_cap;
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

#endif
