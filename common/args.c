/* The argv builder. See args.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

void jq_args_init(jq_args_t *a) { memset(a, 0, sizeof(*a)); }

void jq_args_reset(jq_args_t *a) {
    for (int i = 0; i < a->nowned; i++) free(a->owned[i]);
    a->nowned = 0;
    a->argc = 0;
    a->oom = 0;
}

void jq_args_destroy(jq_args_t *a) {
    jq_args_reset(a);
    free(a->argv);
    free(a->lens);
    free(a->owned);
    memset(a, 0, sizeof(*a));
}

void jq_args_add(jq_args_t *a, const char *s, size_t len) {
    if (a->oom) return;
    if (a->argc == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        const char **argv = realloc(a->argv, (size_t)cap * sizeof(*argv));
        if (argv) a->argv = argv;
        size_t *lens = realloc(a->lens, (size_t)cap * sizeof(*lens));
        if (lens) a->lens = lens;
        if (!argv || !lens) {
            a->oom = 1;
            return;
        }
        a->cap = cap;
    }
    a->argv[a->argc] = s;
    a->lens[a->argc] = len;
    a->argc++;
}

void jq_args_str(jq_args_t *a, const char *s) { jq_args_add(a, s, strlen(s)); }

void jq_args_dup(jq_args_t *a, const char *s, size_t len) {
    if (a->oom) return;
    if (a->nowned == a->owned_cap) {
        int cap = a->owned_cap ? a->owned_cap * 2 : 8;
        char **owned = realloc(a->owned, (size_t)cap * sizeof(*owned));
        if (!owned) {
            a->oom = 1;
            return;
        }
        a->owned = owned;
        a->owned_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        a->oom = 1;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    a->owned[a->nowned++] = copy;
    jq_args_add(a, copy, len);
}

void jq_args_ll(jq_args_t *a, long long v) {
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", v);
    jq_args_dup(a, buf, (size_t)n);
}
