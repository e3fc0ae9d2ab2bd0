/* Payload encodings (see codec.h), the msgpack side: checking that bytes
 * are exactly one msgpack object, and reading a map. The JSON side is in
 * codec_from_json.c (JSON text -> msgpack) and codec_to_json.c (msgpack ->
 * JSON text, and which bytes are text). */

#include "codec.h"

#include <stdio.h>
#include <string.h>

/* ---- msgpack check ----
 *
 * A walk over the bytes, without unpacking: it allocates nothing, so a
 * 64 MiB payload costs no memory to check, and it gives exact positions.
 * It accepts exactly what msgpack_unpack_next accepts, including that
 * library's limit of 32 nested containers, so that a checked payload never
 * fails to unpack later. A container may not announce more elements than
 * there are bytes left: each element takes at least one byte, and this keeps
 * msgpack-c from allocating room for a count that cannot be real. */

#define MSGPACK_MAX_DEPTH 32
#define MP_ERR "payload is not valid msgpack: "

static uint64_t be(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Decodes the header at p[0..avail): its size *hlen, the bytes that follow
 * it *body (str, bin, ext) and the elements it opens *count (array, map:
 * twice the pairs). Returns 1 for a container, 0 for a scalar, -1 for the
 * unused type byte 0xc1, -2 if the header itself is cut off. */
static int mp_header(const unsigned char *p, size_t avail, size_t *hlen, uint64_t *body,
                     uint64_t *count) {
    unsigned char b = p[0];
    /* Header size and length-field size of 0xc4..0xdf; 0 = fixed below. */
    static const unsigned char hl[32] = {2, 3, 5, 3, 4, 6, 5, 9, 2, 3, 5, 9, 2, 3, 5, 9,
                                         2, 2, 2, 2, 2, 2, 3, 5, 3, 5, 3, 5, 0, 0, 0, 0};

    *body = 0;
    *count = 0;
    *hlen = 1;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return 0;
    if (b == 0xc1) return -1;
    if (b <= 0x8f) {
        *count = 2u * (b & 0x0f);
        return 1;
    }
    if (b <= 0x9f) {
        *count = b & 0x0f;
        return 1;
    }
    if (b <= 0xbf) {
        *body = b & 0x1f;
        return 0;
    }
    if (b >= 0xdc) {
        *hlen = b & 1 ? 5 : 3;
        if (avail < *hlen) return -2;
        *count = be(p + 1, *hlen - 1) * (b >= 0xde ? 2 : 1);
        return 1;
    }
    *hlen = hl[b - 0xc4];
    if (avail < *hlen) return -2;
    if (b >= 0xd4 && b <= 0xd8) /* fixext 1, 2, 4, 8, 16 */
        *body = 1u << (b - 0xd4);
    else if (b <= 0xc6 || (b >= 0xd9 && b <= 0xdb)) /* bin, str */
        *body = be(p + 1, *hlen - 1);
    else if (b <= 0xc9) /* ext 8, 16, 32: length, then the type byte */
        *body = be(p + 1, *hlen - 2);
    return 0;
}

int jq_codec_check_msgpack(const char *buf, size_t len, char *err, size_t errlen) {
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t left[MSGPACK_MAX_DEPTH + 1]; /* elements still due per level */
    int depth = 0;                        /* open non-empty containers */
    size_t pos = 0;

    left[0] = 1;
    for (;;) {
        while (depth > 0 && left[depth] == 0) depth--;
        if (depth == 0 && left[0] == 0) break;
        if (pos >= len) {
            snprintf(err, errlen, MP_ERR "truncated at byte %zu of %zu", pos, len);
            return -1;
        }

        size_t hlen;
        uint64_t body, count;
        int kind = mp_header(p + pos, len - pos, &hlen, &body, &count);
        if (kind == -1) {
            snprintf(err, errlen, MP_ERR "bad type byte 0xc1 at byte %zu", pos);
            return -1;
        }
        if (kind == -2 || hlen > len - pos || body > len - pos - hlen || count > len - pos - hlen) {
            snprintf(err, errlen, MP_ERR "truncated at byte %zu of %zu", pos, len);
            return -1;
        }
        left[depth]--;
        if (kind == 1) {
            if (depth >= MSGPACK_MAX_DEPTH) {
                snprintf(err, errlen, MP_ERR "nested deeper than %d levels at byte %zu",
                         MSGPACK_MAX_DEPTH, pos);
                return -1;
            }
            if (count > 0) left[++depth] = count;
        }
        pos += hlen + (size_t)body;
    }
    if (pos != len) {
        snprintf(err, errlen, MP_ERR "%zu trailing bytes after byte %zu", len - pos, pos);
        return -1;
    }
    return 0;
}

const msgpack_object *jq_codec_map_get(const msgpack_object *obj, const char *key) {
    size_t klen;

    if (!obj || obj->type != MSGPACK_OBJECT_MAP || !key) return NULL;
    klen = strlen(key);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &obj->via.map.ptr[i].val;
    }
    return NULL;
}
