/* The handler processes' frames (procwire.h). */

#include "procwire.h"

#include <stdio.h>
#include <string.h>

/* ---- encoding ---- */

static int pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

/* Opens a frame: its length, patched by frame_end, and a map of n pairs
 * whose first is op. Returns the frame's offset in out, or -1. */
static long frame_begin(msgpack_sbuffer *out, msgpack_packer *pk, size_t n, const char *op) {
    size_t at = out->size;
    static const char zero[JQ_PROC_HDR];
    if (msgpack_sbuffer_write(out, zero, sizeof zero) != 0) return -1;
    msgpack_packer_init(pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_map(pk, n) || pack_str(pk, "op") || pack_str(pk, op)) return -1;
    return (long)at;
}

static void frame_end(msgpack_sbuffer *out, long at) {
    uint32_t len = (uint32_t)(out->size - (size_t)at - JQ_PROC_HDR);
    unsigned char *h = (unsigned char *)out->data + at;
    h[0] = (unsigned char)(len >> 24);
    h[1] = (unsigned char)(len >> 16);
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
}

int jq_procwire_job(msgpack_sbuffer *out, uint64_t seq, const jq_task_t *t) {
    msgpack_packer pk;
    long at = frame_begin(out, &pk, 8, "job");
    if (at < 0) return -1;
    if (pack_str(&pk, "seq") || msgpack_pack_uint64(&pk, seq) || pack_str(&pk, "id") ||
        pack_str(&pk, t->job_id ? t->job_id : "") || pack_str(&pk, "type") ||
        pack_str(&pk, t->handler->name) || pack_str(&pk, "queue") ||
        pack_str(&pk, t->queue ? t->queue : "") || pack_str(&pk, "attempt") ||
        msgpack_pack_long_long(&pk, t->attempt) || pack_str(&pk, "deadline_ms") ||
        msgpack_pack_long_long(&pk, t->deadline_ms) || pack_str(&pk, "payload") ||
        msgpack_pack_object(&pk, *t->payload))
        return -1;
    frame_end(out, at);
    return 0;
}

int jq_procwire_cancel(msgpack_sbuffer *out, uint64_t seq) {
    msgpack_packer pk;
    long at = frame_begin(out, &pk, 2, "cancel");
    if (at < 0 || pack_str(&pk, "seq") || msgpack_pack_uint64(&pk, seq)) return -1;
    frame_end(out, at);
    return 0;
}

/* ---- decoding ---- */

static int key_is(const msgpack_object *k, const char *s) {
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, s, n) == 0;
}

static const msgpack_object *field(const msgpack_object *map, const char *name) {
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, name)) return &map->via.map.ptr[i].val;
    return NULL;
}

static const struct {
    const char *name;
    jq_proc_op_t op;
} ops[] = {
    {"hello", JQ_PROC_HELLO},
    {"result", JQ_PROC_RESULT},
    {"error", JQ_PROC_ERROR},
    {"progress", JQ_PROC_PROGRESS},
};

static int parse_hello(const msgpack_object *map, jq_proc_msg_t *m, char *err, size_t errlen) {
    const msgpack_object *p = field(map, "protocol");
    if (p == NULL || p->type != MSGPACK_OBJECT_POSITIVE_INTEGER || p->via.u64 != JQ_PROC_PROTOCOL) {
        snprintf(err, errlen, "hello: want protocol %d", JQ_PROC_PROTOCOL);
        return -1;
    }
    m->types = field(map, "types");
    if (m->types == NULL || m->types->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "hello: types must be an array of strings");
        return -1;
    }
    for (uint32_t i = 0; i < m->types->via.array.size; i++)
        if (m->types->via.array.ptr[i].type != MSGPACK_OBJECT_STR) {
            snprintf(err, errlen, "hello: types must be an array of strings");
            return -1;
        }
    const msgpack_object *mi = field(map, "max_inflight");
    m->max_inflight = 1;
    if (mi != NULL && mi->type != MSGPACK_OBJECT_NIL) {
        if (mi->type != MSGPACK_OBJECT_POSITIVE_INTEGER || mi->via.u64 < 1) {
            snprintf(err, errlen, "hello: max_inflight must be an integer >= 1");
            return -1;
        }
        m->max_inflight = mi->via.u64 > 1000000 ? 1000000 : (long long)mi->via.u64;
    }
    return 0;
}

static int parse_progress(const msgpack_object *map, jq_proc_msg_t *m, char *err, size_t errlen) {
    const msgpack_object *f = field(map, "fraction"), *msg = field(map, "message");
    if (f != NULL && (f->type == MSGPACK_OBJECT_FLOAT64 || f->type == MSGPACK_OBJECT_FLOAT32))
        m->fraction = f->via.f64;
    else if (f != NULL && f->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        m->fraction = (double)f->via.u64;
    else if (f != NULL && f->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        m->fraction = (double)f->via.i64;
    else {
        snprintf(err, errlen, "progress: fraction must be a number");
        return -1;
    }
    if (msg != NULL && msg->type == MSGPACK_OBJECT_STR) {
        m->message = msg->via.str.ptr;
        m->message_len = msg->via.str.size;
    } else if (msg != NULL && msg->type != MSGPACK_OBJECT_NIL) {
        snprintf(err, errlen, "progress: message must be a string");
        return -1;
    }
    return 0;
}

static int parse_reply(const msgpack_object *map, jq_proc_msg_t *m, char *err, size_t errlen) {
    const msgpack_object *seq = field(map, "seq");
    if (seq == NULL || seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(err, errlen, "%s: seq must be a non-negative integer", ops[m->op - 1].name);
        return -1;
    }
    m->seq = seq->via.u64;
    if (m->op == JQ_PROC_RESULT) {
        m->value = field(map, "result");
    } else if (m->op == JQ_PROC_PROGRESS) {
        return parse_progress(map, m, err, errlen);
    } else {
        const msgpack_object *e = field(map, "error"), *perm = field(map, "permanent");
        if (e == NULL || e->type != MSGPACK_OBJECT_STR) {
            snprintf(err, errlen, "error: error must be a string");
            return -1;
        }
        m->error = e->via.str.ptr;
        m->error_len = e->via.str.size;
        if (perm != NULL && perm->type != MSGPACK_OBJECT_BOOLEAN &&
            perm->type != MSGPACK_OBJECT_NIL) {
            snprintf(err, errlen, "error: permanent must be a boolean");
            return -1;
        }
        m->permanent = perm != NULL && perm->type == MSGPACK_OBJECT_BOOLEAN && perm->via.boolean;
        const msgpack_object *ra = field(map, "retry_after_ms");
        if (ra != NULL && ra->type != MSGPACK_OBJECT_NIL) {
            if (ra->type != MSGPACK_OBJECT_POSITIVE_INTEGER || ra->via.u64 < 1) {
                snprintf(err, errlen, "error: retry_after_ms must be an integer >= 1");
                return -1;
            }
            m->retry_after_ms = ra->via.u64 > 3600000 ? 3600000 : (long long)ra->via.u64;
        }
    }
    return 0;
}

int jq_procwire_parse(const char *body, size_t len, msgpack_unpacked *u, jq_proc_msg_t *m,
                      char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    size_t off = 0;
    if (msgpack_unpack_next(u, body, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "a frame of %zu bytes that is not msgpack", len);
        return -1;
    }
    if (off != len) {
        snprintf(err, errlen, "%zu bytes after the msgpack value of a frame", len - off);
        return -1;
    }
    const msgpack_object *map = &u->data;
    if (map->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "a frame that is not a msgpack map");
        return -1;
    }
    const msgpack_object *op = field(map, "op");
    for (size_t i = 0; op != NULL && i < sizeof ops / sizeof ops[0]; i++)
        if (key_is(op, ops[i].name)) m->op = ops[i].op;
    if (m->op == 0) {
        if (op != NULL && op->type == MSGPACK_OBJECT_STR)
            snprintf(err, errlen, "unknown op '%.*s'",
                     (int)(op->via.str.size > 32 ? 32 : op->via.str.size), op->via.str.ptr);
        else
            snprintf(err, errlen, "a frame without a string op");
        return -1;
    }
    return m->op == JQ_PROC_HELLO ? parse_hello(map, m, err, errlen)
                                  : parse_reply(map, m, err, errlen);
}
