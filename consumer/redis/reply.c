/* Reply objects carved from a per-connection arena, and fields kept past
 * their reply. See reply.h. */

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "sentinel.h"

#define CHUNK_MIN (16 * 1024)
#define CHUNK_KEEP_MAX (256 * 1024)
#define ALIGN alignof(max_align_t)

struct jq_reply_chunk {
    jq_reply_chunk_t *next;
    size_t size, used; /* of data[] */
    alignas(max_align_t) unsigned char data[];
};

/* A block of its own: *slot (a reply's str or element) is freed at
 * rewind unless it was moved out (then NULL). The node is carved. */
struct jq_reply_own {
    jq_reply_own_t *next;
    void **slot;
};

void jq_reply_arena_init(jq_reply_arena_t *a) { memset(a, 0, sizeof(*a)); }

static void free_chunks(jq_reply_chunk_t *c) {
    while (c) {
        jq_reply_chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

/* Every reply is gone: free the blocks of their own and the older chunks,
 * and rewind the current one, which stays for the next reply unless it
 * grew past what is worth keeping at rest. */
static void rewind_arena(jq_reply_arena_t *a) {
    for (jq_reply_own_t *o = a->own; o; o = o->next) free(*o->slot);
    a->own = NULL;
    free_chunks(a->full);
    a->full = NULL;
    if (a->cur && a->cur->size > CHUNK_KEEP_MAX) {
        free(a->cur);
        a->cur = NULL;
    }
    if (a->cur) a->cur->used = 0;
}

void jq_reply_arena_destroy(jq_reply_arena_t *a) {
    a->live = 0;
    rewind_arena(a);
    free(a->cur);
    a->cur = NULL;
}

size_t jq_reply_arena_held(const jq_reply_arena_t *a) {
    size_t n = 0;
    for (const jq_reply_chunk_t *c = a->cur; c; c = c->next) n += c->size;
    for (const jq_reply_chunk_t *c = a->full; c; c = c->next) n += c->size;
    return n;
}

/* n bytes (n <= CHUNK_KEEP_MAX), aligned for any object. A new chunk
 * doubles the last one, so the chunk kept at rest grows to what a typical
 * reply of this connection needs. */
static void *carve(jq_reply_arena_t *a, size_t n) {
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    jq_reply_chunk_t *c = a->cur;
    if (!c || c->size - c->used < n) {
        size_t size = c ? 2 * c->size : CHUNK_MIN;
        if (size > CHUNK_KEEP_MAX) size = CHUNK_KEEP_MAX;
        if (size < n) size = n;
        jq_reply_chunk_t *nc = malloc(sizeof(*nc) + size);
        if (!nc) return NULL;
        nc->size = size;
        nc->used = 0;
        if (c) {
            /* Only an empty chunk is dropped: the others hold replies. */
            if (c->used == 0) {
                free(c);
            } else {
                c->next = a->full;
                a->full = c;
            }
        }
        nc->next = NULL;
        a->cur = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* A block of n bytes of its own, stored in *slot and freed at rewind.
 * zero: calloc, whose fresh pages cost nothing until written (an element
 * vector of the count a server announced: see create_array). */
static void *own(jq_reply_arena_t *a, void **slot, size_t n, int zero) {
    jq_reply_own_t *o = carve(a, sizeof(*o));
    if (!o) return NULL;
    void *p = zero ? calloc(1, n) : malloc(n);
    if (!p) return NULL; /* o stays carved: the arena frees it at rewind */
    o->slot = slot;
    *slot = p;
    o->next = a->own;
    a->own = o;
    return p;
}

/* A root reply carries its arena, for free_object, which is given
 * nothing else. */
typedef struct root {
    jq_reply_arena_t *arena;
    alignas(max_align_t) redisReply reply;
} root_t;

/* A new object of the given type; linked only once complete (link). */
static redisReply *create(const redisReadTask *task, int type) {
    jq_reply_arena_t *a = task->privdata;
    redisReply *r;
    if (task->parent) {
        r = carve(a, sizeof(*r));
        if (!r) return NULL;
    } else {
        root_t *root = carve(a, sizeof(*root));
        if (!root) return NULL;
        root->arena = a;
        r = &root->reply;
    }
    memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
}

/* Links r into its parent array, as hiredis' own functions do, or counts
 * it as a live reply. Only complete objects are linked: when a function
 * fails, the reader frees the partial reply it has (if any), not r. */
static redisReply *link(const redisReadTask *task, redisReply *r) {
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    } else {
        ((jq_reply_arena_t *)task->privdata)->live++;
    }
    return r;
}

/* A placeholder of the filter (bulkcap.c): the string it stands for
 * was skipped unread; its length is what the line says. */
static void *create_oversized(const redisReadTask *task, const char *str, size_t len) {
    size_t m = sizeof(JQ_REPLY_OVERSIZED_MARK) - 1;
    long long n = 0;
    for (size_t i = m; i < len && str[i] >= '0' && str[i] <= '9' && n < (1LL << 50); i++)
        n = n * 10 + (str[i] - '0');
    redisReply *r = create(task, JQ_REPLY_OVERSIZED);
    if (!r) return NULL;
    r->integer = n;
    return link(task, r);
}

static int is_mark(const jq_reply_arena_t *a, const redisReadTask *task, const char *str,
                   size_t len) {
    size_t m = sizeof(JQ_REPLY_OVERSIZED_MARK) - 1;
    return a->marks && task->type == REDIS_REPLY_ERROR && len > m &&
           memcmp(str, JQ_REPLY_OVERSIZED_MARK, m) == 0;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
    jq_reply_arena_t *a = task->privdata;
    if (is_mark(a, task, str, len)) return create_oversized(task, str, len);
    size_t nm = task->type == REDIS_REPLY_ERROR ? jq_sentinel_not_master(str, len) : 0;
    if (nm && nm < sizeof(a->not_master)) {
        memcpy(a->not_master, str, nm);
        a->not_master[nm] = '\0';
    }
    redisReply *r = create(task, task->type);
    if (!r) return NULL;
    char *s = len >= JQ_REPLY_OWN_MIN ? own(a, (void **)&r->str, len + 1, 0) : carve(a, len + 1);
    if (!s) return NULL;
    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return link(task, r);
}

static void *create_array(const redisReadTask *task, int elements) {
    jq_reply_arena_t *a = task->privdata;
    if (elements > JQ_REPLY_ARRAY_MAX) return NULL; /* see reply.h */
    redisReply *r = create(task, REDIS_REPLY_ARRAY);
    if (!r) return NULL;
    /* As hiredis: a count below 1 makes an empty array. A vector beyond
     * JQ_REPLY_OWN_MIN bytes is calloc'd, whose fresh pages cost nothing
     * until the elements arrive. */
    if (elements > 0) {
        size_t n = (size_t)elements * sizeof(redisReply *);
        void *v;
        if (n > JQ_REPLY_OWN_MIN) {
            v = own(a, (void **)&r->element, n, 1);
        } else {
            v = carve(a, n);
            if (v) memset(v, 0, n);
        }
        if (!v) return NULL;
        r->element = v;
        r->elements = (size_t)elements;
    }
    return link(task, r);
}

static void *create_integer(const redisReadTask *task, long long value) {
    redisReply *r = create(task, REDIS_REPLY_INTEGER);
    if (!r) return NULL;
    r->integer = value;
    return link(task, r);
}

static void *create_nil(const redisReadTask *task) {
    redisReply *r = create(task, REDIS_REPLY_NIL);
    return r ? link(task, r) : NULL;
}

/* hiredis frees only whole replies (after the callback, or a partial one
 * when the reader fails or is freed), never a sub-object alone. Memory
 * comes back when no reply is left alive. */
static void free_object(void *obj) {
    root_t *root = (root_t *)((char *)obj - offsetof(root_t, reply));
    jq_reply_arena_t *a = root->arena;
    if (--a->live == 0) rewind_arena(a);
}

static redisReplyObjectFunctions arena_functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

void jq_reply_arena_attach(jq_reply_arena_t *a, redisReader *r) {
    r->fn = &arena_functions;
    r->privdata = a;
}

/* ---- fields kept past their reply ---- */

static int is_str(const redisReply *e) { return e && e->type == REDIS_REPLY_STRING && e->str; }

static int moved(const redisReply *e) { return e->len >= JQ_REPLY_OWN_MIN; }

size_t jq_reply_fields_size(const redisReply *arr) {
    size_t n = arr->type == REDIS_REPLY_ARRAY ? arr->elements : 0;
    size_t bytes = sizeof(jq_reply_fields_t);
    if (n > (SIZE_MAX - bytes) / sizeof(jq_str_t) / 2) return 0;
    bytes += n * sizeof(jq_str_t);
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = arr->element[i];
        if (!is_str(e) || moved(e)) continue;
        if (e->len >= SIZE_MAX - bytes - 1) return 0;
        bytes += e->len + 1;
    }
    return bytes;
}

jq_reply_fields_t *jq_reply_fields_fill(void *mem, redisReply *arr) {
    jq_reply_fields_t *f = mem;
    size_t n = arr->type == REDIS_REPLY_ARRAY ? arr->elements : 0;
    f->n = n;
    char *p = (char *)&f->f[n];
    for (size_t i = 0; i < n; i++) {
        redisReply *e = arr->element[i];
        if (e && e->type == JQ_REPLY_OVERSIZED) {
            f->f[i].p = NULL;
            f->f[i].len = (size_t)e->integer;
        } else if (!is_str(e)) {
            f->f[i].p = NULL;
            f->f[i].len = 0;
        } else if (moved(e)) {
            f->f[i].p = e->str;
            f->f[i].len = e->len;
            e->str = NULL; /* ours now: freed by jq_reply_fields_release */
        } else {
            memcpy(p, e->str, e->len + 1);
            f->f[i].p = p;
            f->f[i].len = e->len;
            p += e->len + 1;
        }
    }
    return f;
}

void jq_reply_fields_release(jq_reply_fields_t *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->f[i].p || f->f[i].len < JQ_REPLY_OWN_MIN) continue;
        free((void *)f->f[i].p);
        f->f[i].p = NULL;
        f->f[i].len = 0;
    }
}
