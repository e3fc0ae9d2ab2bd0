/* Key names of PROTOCOL.md, built into caller buffers. Two or three are
 * built per job on the hot path, so by copying the parts, not through
 * snprintf (which a profile of the worker found at about 10% of its CPU
 * with the other printf calls of a job). */

#include <string.h>

#include "keys.h"

int jq_name_valid(const char *s, size_t len) {
    if (len < 1 || len > JQ_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == ':' || c == '-')
            continue;
        return 0;
    }
    return 1;
}

/* A bounded writer: like snprintf, the buffer always ends up
 * NUL-terminated, truncated if it is too small, and the length is -1
 * then. */
typedef struct kbuf {
    char *p;
    size_t len, cap;
    int over;
} kbuf_t;

static void put(kbuf_t *b, const char *s) {
    size_t n = strlen(s);
    if (b->len + n >= b->cap) {
        n = b->cap - 1 - b->len;
        b->over = 1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static int done(const kbuf_t *b) { return b->over ? -1 : (int)b->len; }

/* Starts "<prefix>:{<queue>}:" in buf: every per-queue key begins so. */
static kbuf_t queue_key(char *buf, size_t cap, const char *prefix, const char *queue) {
    kbuf_t b = {buf, 0, cap, 0};
    buf[0] = '\0';
    put(&b, prefix);
    put(&b, ":{");
    put(&b, queue);
    put(&b, "}:");
    return b;
}

int jq_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix) {
    if (cap == 0) return -1;
    kbuf_t b = queue_key(buf, cap, prefix, queue);
    put(&b, suffix);
    return done(&b);
}

int jq_key_id(char *buf, size_t cap, const char *prefix, const char *queue, const char *what,
              const char *id) {
    if (cap == 0) return -1;
    kbuf_t b = queue_key(buf, cap, prefix, queue);
    put(&b, what);
    put(&b, ":");
    put(&b, id);
    return done(&b);
}

int jq_schedule_name_valid(const char *s) {
    size_t len = strlen(s);
    return len <= JQ_SCHEDULE_NAME_MAX && jq_name_valid(s, len) && !strchr(s, ':');
}

int jq_key_schedule(char *buf, size_t cap, const char *prefix, const char *queue, const char *name,
                    int job) {
    if (cap == 0) return -1;
    kbuf_t b = queue_key(buf, cap, prefix, queue);
    put(&b, "schedule:");
    put(&b, name);
    if (job) put(&b, ":job");
    return done(&b);
}

int jq_key_global(char *buf, size_t cap, const char *prefix, const char *suffix) {
    if (cap == 0) return -1;
    kbuf_t b = {buf, 0, cap, 0};
    buf[0] = '\0';
    put(&b, prefix);
    put(&b, ":");
    put(&b, suffix);
    return done(&b);
}

static const char *const prio_names[JQ_PRIO_N] = {"high", "normal", "low"};

int jq_prio_parse(const char *s, size_t len, jq_prio_t *out) {
    for (int p = 0; p < JQ_PRIO_N; p++)
        if (s && strlen(prio_names[p]) == len && memcmp(prio_names[p], s, len) == 0) {
            *out = (jq_prio_t)p;
            return 0;
        }
    return -1;
}

const char *jq_prio_name(jq_prio_t p) { return prio_names[p]; }

const char *jq_prio_stream(jq_prio_t p) {
    static const char *const streams[JQ_PRIO_N] = {"stream:high", "stream", "stream:low"};
    return streams[p];
}
