/* The argv builder. See args.h. */

#include <stdlib.h>
#include <string.h>

#include "args.h"

/* Copies live in blocks that are never reallocated (argv points into
 * them); a reset keeps the small ones for the next command. */
#define BLOCK_MIN 4096
#define BLOCK_KEEP (64 * 1024) /* larger blocks (a big value) are freed */

typedef struct jq_args_block {
    struct jq_args_block *next;
    size_t used, cap;
    char data[];
} jq_args_block_t;

void jq_args_init(jq_args_t *a) { memset(a, 0, sizeof(*a)); }

void jq_args_reset(jq_args_t *a) {
    jq_args_block_t **pp = &a->blocks;
    while (*pp) {
        jq_args_block_t *b = *pp;
        if (b->cap > BLOCK_KEEP) {
            *pp = b->next;
            free(b);
            continue;
        }
        b->used = 0;
        pp = &b->next;
    }
    a->argc = 0;
    a->oom = 0;
}

void jq_args_destroy(jq_args_t *a) {
    for (jq_args_block_t *b = a->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a->argv);
    free(a->lens);
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

/* Room for len bytes in a block with space left, or a new one. */
static char *room(jq_args_t *a, size_t len) {
    for (jq_args_block_t *b = a->blocks; b; b = b->next)
        if (b->cap - b->used >= len) {
            char *p = b->data + b->used;
            b->used += len;
            return p;
        }
    size_t cap = len > BLOCK_MIN ? len : BLOCK_MIN;
    jq_args_block_t *b = malloc(sizeof(*b) + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->used = len;
    b->next = a->blocks;
    a->blocks = b;
    return b->data;
}

void jq_args_dup(jq_args_t *a, const char *s, size_t len) {
    if (a->oom) return;
    char *copy = room(a, len + 1);
    if (!copy) {
        a->oom = 1;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    jq_args_add(a, copy, len);
}

/* Every argument of every command passes through here (the length in its
 * RESP header), and each outcome's timestamps: one digit at a time into a
 * reversed buffer was ~4% of a worker's CPU under noop jobs. So: count the
 * digits, then write from the end two at a time from a table. */
int jq_ll2str(char *buf, long long v) {
    static const char pairs[] = "000102030405060708091011121314151617181920212223242526272829303132"
                                "3334353637383940414243444546474849"
                                "505152535455565758596061626364656667686970717273747576777879808182"
                                "8384858687888990919293949596979899";
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int digits = 1;
    for (unsigned long long t = 10; digits < 20 && u >= t; t *= 10) digits++;
    int len = (v < 0) + digits;
    char *p = buf + len;
    *p = '\0';
    while (u >= 100) {
        unsigned i = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = pairs[i + 1];
        *--p = pairs[i];
    }
    if (u >= 10) {
        *--p = pairs[u * 2 + 1];
        *--p = pairs[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0) buf[0] = '-';
    return len;
}

void jq_args_ll(jq_args_t *a, long long v) {
    char buf[24];
    int n = jq_ll2str(buf, v);
    jq_args_dup(a, buf, (size_t)n);
}

void jq_args_cat(jq_args_t *a, const jq_args_t *src) {
    if (src->oom) a->oom = 1;
    for (int i = 0; i < src->argc; i++) jq_args_add(a, src->argv[i], src->lens[i]);
}
