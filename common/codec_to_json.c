/* Payload encodings (see codec.h): msgpack -> JSON text, written by hand,
 * and the UTF-8 test that decides what is text.
 *
 * Choices the header leaves open:
 * - NaN and infinities are written as null, as JavaScript's JSON.stringify
 *   does: JSON has no way to spell them.
 * - Floats are written in the shortest form that reads back to the same
 *   value, always with a '.' or an exponent, so that a float stays a float
 *   through msgpack -> JSON -> msgpack. */

#include "codec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(msgpack_sbuffer *out, const char *s, size_t n) {
    return msgpack_sbuffer_write(out, s, n);
}

static int puts_(msgpack_sbuffer *out, const char *s) { return put(out, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    size_t need;
    uint32_t cp;

    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf) {
        need = 2;
        cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 3;
        cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 4;
        cp = b & 0x07;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return need;
}

int jq_codec_pack_text(msgpack_packer *pk, const char *p, size_t n) {
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, seq;

    while (i < n && (seq = utf8_seq(u + i, n - i)) > 0) i += seq;
    if (i == n) return msgpack_pack_str_with_body(pk, p, n);
    return msgpack_pack_bin_with_body(pk, p, n);
}

int jq_codec_json_string(msgpack_sbuffer *out, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* s[run..i) is copied verbatim */
    char esc[8];

    /* An empty str may come with no bytes at all (NULL): NULL + 0 is
     * undefined, so it never reaches the copy below. */
    if (len == 0) return put(out, "\"\"", 2);
    if (put(out, "\"", 1) < 0) return -1;
    while (i < len) {
        unsigned char ch = s[i];
        const char *e = NULL;
        size_t seq = 1;

        if (ch == '"')
            e = "\\\"";
        else if (ch == '\\')
            e = "\\\\";
        else if (ch == '\n')
            e = "\\n";
        else if (ch == '\r')
            e = "\\r";
        else if (ch == '\t')
            e = "\\t";
        else if (ch == '\b')
            e = "\\b";
        else if (ch == '\f')
            e = "\\f";
        else if (ch < 0x20 || (ch >= 0x80 && (seq = utf8_seq(s + i, len - i)) == 0)) {
            /* Control characters, and each byte of invalid UTF-8, as
             * \u00XX: lossy for binary, but always valid JSON. */
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            e = esc;
            seq = 1;
        }
        if (e) {
            if (put(out, (const char *)s + run, i - run) < 0 || puts_(out, e) < 0) return -1;
            i += 1;
            run = i;
        } else {
            i += seq;
        }
    }
    if (put(out, (const char *)s + run, i - run) < 0) return -1;
    return put(out, "\"", 1);
}

/* Shortest %g form that reads back as the same value (as a float when
 * `single`), with ".0" added when it would otherwise read as an integer. */
static int put_float(msgpack_sbuffer *out, double d, int single) {
    char buf[40];
    int prec;

    if (!isfinite(d)) return puts_(out, "null");
    for (prec = single ? 6 : 15; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (single ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d) break;
    }
    if (prec == 17) snprintf(buf, sizeof(buf), "%.17g", d);
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
    return puts_(out, buf);
}

#define KEY_JSON_MAX 1024

/* A map key: a string as itself, anything else as a string of its own
 * JSON text, e.g. 1 -> "1", [1,2] -> "[1,2]". Escaping doubles the
 * backslashes of a key inside a key at each level, so 32 nested map keys
 * would take 2^32 bytes (found by tests/fuzz/fuzz_msgpack): a key's text
 * longer than KEY_JSON_MAX is named by its size instead. */
static int put_key(const msgpack_object *k, msgpack_sbuffer *out) {
    char buf[64];
    msgpack_sbuffer kb;
    int r;

    if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN)
        return jq_codec_msgpack_to_json(k, out);
    msgpack_sbuffer_init(&kb);
    r = jq_codec_msgpack_to_json(k, &kb);
    if (r == 0 && kb.size > KEY_JSON_MAX) {
        snprintf(buf, sizeof(buf), "\"<key of %zu bytes of JSON>\"", kb.size);
        r = puts_(out, buf);
    } else if (r == 0) {
        r = jq_codec_json_string(out, kb.data ? kb.data : "", kb.size);
    }
    msgpack_sbuffer_destroy(&kb);
    return r;
}

static int put_map(const msgpack_object *obj, msgpack_sbuffer *out) {
    if (put(out, "{", 1) < 0) return -1;
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        if ((i > 0 && put(out, ",", 1) < 0) || put_key(&obj->via.map.ptr[i].key, out) < 0 ||
            put(out, ":", 1) < 0 || jq_codec_msgpack_to_json(&obj->via.map.ptr[i].val, out) < 0)
            return -1;
    }
    return put(out, "}", 1);
}

int jq_codec_msgpack_to_json(const msgpack_object *obj, msgpack_sbuffer *out) {
    char buf[64];

    switch (obj->type) {
        case MSGPACK_OBJECT_NIL: return puts_(out, "null");
        case MSGPACK_OBJECT_BOOLEAN: return puts_(out, obj->via.boolean ? "true" : "false");
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf(buf, sizeof(buf), "%" PRIu64, obj->via.u64);
            return puts_(out, buf);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf(buf, sizeof(buf), "%" PRId64, obj->via.i64);
            return puts_(out, buf);
        case MSGPACK_OBJECT_FLOAT32: return put_float(out, obj->via.f64, 1);
        case MSGPACK_OBJECT_FLOAT64: return put_float(out, obj->via.f64, 0);
        case MSGPACK_OBJECT_STR:
            return jq_codec_json_string(out, obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return jq_codec_json_string(out, obj->via.bin.ptr, obj->via.bin.size);
        case MSGPACK_OBJECT_EXT:
            snprintf(buf, sizeof(buf), "\"<ext type %d, %" PRIu32 " bytes>\"",
                     (int)obj->via.ext.type, obj->via.ext.size);
            return puts_(out, buf);
        case MSGPACK_OBJECT_ARRAY:
            if (put(out, "[", 1) < 0) return -1;
            for (uint32_t i = 0; i < obj->via.array.size; i++) {
                if ((i > 0 && put(out, ",", 1) < 0) ||
                    jq_codec_msgpack_to_json(&obj->via.array.ptr[i], out) < 0)
                    return -1;
            }
            return put(out, "]", 1);
        case MSGPACK_OBJECT_MAP: return put_map(obj, out);
    }
    return puts_(out, "null");
}

int jq_codec_bytes_to_json(const char *buf, size_t len, msgpack_sbuffer *out, char *err,
                           size_t errlen) {
    msgpack_unpacked u;
    size_t off = 0;
    int rc;

    if (jq_codec_check_msgpack(buf, len, err, errlen) < 0) return -1;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        /* The check above accepts only what msgpack-c can unpack, so this
         * is memory. */
        msgpack_unpacked_destroy(&u);
        snprintf(err, errlen, "out of memory unpacking msgpack");
        return -1;
    }
    rc = jq_codec_msgpack_to_json(&u.data, out);
    if (rc < 0) snprintf(err, errlen, "out of memory writing JSON");
    msgpack_unpacked_destroy(&u);
    return rc;
}
