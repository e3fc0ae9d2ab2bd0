/* Payload encodings (see codec.h): msgpack checking, JSON -> msgpack through
 * json-c, and msgpack -> JSON text written by hand.
 *
 * Choices the header leaves open:
 * - JSON integers outside the 64-bit range (below INT64_MIN, above
 *   UINT64_MAX) are an error, not a float: a silent float would change an id
 *   or a counter without anyone noticing. json-c clamps them, so a clamped
 *   value sends us back to the text to tell a real limit from a clamp.
 * - NaN and infinities (json-c accepts "NaN", and 1e400 overflows) are an
 *   error in JSON input, and are written as null in JSON output, as
 *   JavaScript's JSON.stringify does: JSON has no way to spell them.
 * - Floats are written in the shortest form that reads back to the same
 *   value, always with a '.' or an exponent, so that a float stays a float
 *   through msgpack -> JSON -> msgpack.
 * - json-c keeps object keys as C strings: a key holding \u0000 is cut
 *   there, and of duplicate keys the last wins. Values keep every byte. */

#include "codec.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_ERR "payload is not valid JSON: "

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

static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Decodes the header at p[0..avail): its size *hlen, the bytes that follow
 * it *body (str, bin, ext) and the elements it opens *count (array, map:
 * twice the pairs). Returns 1 for a container, 0 for a scalar, -1 for the
 * unused type byte 0xc1, -2 if the header itself is cut off. */
static int mp_header(const unsigned char *p, size_t avail, size_t *hlen,
                     uint64_t *body, uint64_t *count)
{
    unsigned char b = p[0];
    /* Header size and length-field size of 0xc4..0xdf; 0 = fixed below. */
    static const unsigned char hl[32] = {
        2, 3, 5, 3, 4, 6, 5, 9, 2, 3, 5, 9, 2, 3, 5, 9,
        2, 2, 2, 2, 2, 2, 3, 5, 3, 5, 3, 5, 0, 0, 0, 0};

    *body = 0;
    *count = 0;
    *hlen = 1;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if (b == 0xc1)
        return -1;
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
        if (avail < *hlen)
            return -2;
        *count = be(p + 1, *hlen - 1) * (b >= 0xde ? 2 : 1);
        return 1;
    }
    *hlen = hl[b - 0xc4];
    if (avail < *hlen)
        return -2;
    if (b >= 0xd4 && b <= 0xd8) /* fixext 1, 2, 4, 8, 16 */
        *body = 1u << (b - 0xd4);
    else if (b <= 0xc6 || (b >= 0xd9 && b <= 0xdb)) /* bin, str */
        *body = be(p + 1, *hlen - 1);
    else if (b <= 0xc9) /* ext 8, 16, 32: length, then the type byte */
        *body = be(p + 1, *hlen - 2);
    return 0;
}

int jq_codec_check_msgpack(const char *buf, size_t len, char *err,
                           size_t errlen)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t left[MSGPACK_MAX_DEPTH + 1]; /* elements still due per level */
    int depth = 0;                        /* open non-empty containers */
    size_t pos = 0;

    left[0] = 1;
    for (;;) {
        while (depth > 0 && left[depth] == 0)
            depth--;
        if (depth == 0 && left[0] == 0)
            break;
        if (pos >= len) {
            snprintf(err, errlen, MP_ERR "truncated at byte %zu of %zu", pos,
                     len);
            return -1;
        }

        size_t hlen;
        uint64_t body, count;
        int kind = mp_header(p + pos, len - pos, &hlen, &body, &count);
        if (kind == -1) {
            snprintf(err, errlen, MP_ERR "bad type byte 0xc1 at byte %zu",
                     pos);
            return -1;
        }
        if (kind == -2 || hlen > len - pos ||
            body > len - pos - hlen || count > len - pos - hlen) {
            snprintf(err, errlen, MP_ERR "truncated at byte %zu of %zu", pos,
                     len);
            return -1;
        }
        left[depth]--;
        if (kind == 1) {
            if (depth >= MSGPACK_MAX_DEPTH) {
                snprintf(err, errlen,
                         MP_ERR "nested deeper than %d levels at byte %zu",
                         MSGPACK_MAX_DEPTH, pos);
                return -1;
            }
            if (count > 0)
                left[++depth] = count;
        }
        pos += hlen + (size_t)body;
    }
    if (pos != len) {
        snprintf(err, errlen, MP_ERR "%zu trailing bytes after byte %zu",
                 len - pos, pos);
        return -1;
    }
    return 0;
}

/* ---- JSON -> msgpack ---- */

typedef struct json_conv {
    msgpack_packer pk;
    int maybe_clamped; /* saw INT64_MIN or UINT64_MAX: check the text */
    int non_finite;    /* saw NaN or an infinity */
} json_conv_t;

static int pack_json(json_conv_t *c, struct json_object *o)
{
    msgpack_packer *pk = &c->pk;

    switch (json_object_get_type(o)) {
    case json_type_null:
        return msgpack_pack_nil(pk);
    case json_type_boolean:
        return json_object_get_boolean(o) ? msgpack_pack_true(pk)
                                          : msgpack_pack_false(pk);
    case json_type_double: {
        double d = json_object_get_double(o);
        if (!isfinite(d))
            c->non_finite = 1;
        return msgpack_pack_double(pk, d);
    }
    case json_type_int: {
        /* json-c keeps values above INT64_MAX as uint64 and reports them
         * as INT64_MAX through get_int64. */
        int64_t v = json_object_get_int64(o);
        if (v < 0) {
            if (v == INT64_MIN)
                c->maybe_clamped = 1;
            return msgpack_pack_int64(pk, v);
        }
        if (v == INT64_MAX) {
            uint64_t u = json_object_get_uint64(o);
            if (u == UINT64_MAX)
                c->maybe_clamped = 1;
            return msgpack_pack_uint64(pk, u);
        }
        return msgpack_pack_uint64(pk, (uint64_t)v);
    }
    case json_type_string: {
        int len = json_object_get_string_len(o);
        if (msgpack_pack_str(pk, (size_t)len) < 0)
            return -1;
        return msgpack_pack_str_body(pk, json_object_get_string(o),
                                     (size_t)len);
    }
    case json_type_array: {
        size_t n = json_object_array_length(o);
        if (msgpack_pack_array(pk, n) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (pack_json(c, json_object_array_get_idx(o, i)) < 0)
                return -1;
        }
        return 0;
    }
    case json_type_object: {
        if (msgpack_pack_map(pk, (size_t)json_object_object_length(o)) < 0)
            return -1;
        json_object_object_foreach(o, key, val)
        {
            size_t klen = strlen(key);
            if (msgpack_pack_str(pk, klen) < 0 ||
                msgpack_pack_str_body(pk, key, klen) < 0 ||
                pack_json(c, val) < 0)
                return -1;
        }
        return 0;
    }
    }
    return -1;
}

/* Finds an integer literal of the (already valid) JSON text that does not
 * fit in 64 bits. Outside strings, valid JSON has digits only in numbers. */
static int find_big_int(const char *s, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\')
                    i++;
            }
            i++;
            continue;
        }
        if (s[i] != '-' && (s[i] < '0' || s[i] > '9')) {
            i++;
            continue;
        }
        size_t start = i;
        int is_int = 1;
        while (i < len && strchr("+-0123456789.eE", s[i]) && s[i] != '\0') {
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
                is_int = 0;
            i++;
        }
        if (!is_int)
            continue;
        char num[64];
        size_t n = i - start;
        int big = n >= sizeof(num);
        if (!big) {
            memcpy(num, s + start, n);
            num[n] = '\0';
            errno = 0;
            if (num[0] == '-')
                (void)strtoll(num, NULL, 10);
            else
                (void)strtoull(num, NULL, 10);
            big = errno == ERANGE;
        }
        if (big) {
            snprintf(err, errlen,
                     JSON_ERR "integer %.*s%s at byte %zu does not fit in "
                              "64 bits",
                     (int)(n > 24 ? 24 : n), s + start, n > 24 ? "..." : "",
                     start);
            return -1;
        }
    }
    return 0;
}

static int is_json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int jq_codec_json_to_msgpack(const char *json, size_t len,
                             msgpack_sbuffer *out, char *err, size_t errlen)
{
    struct json_tokener *tok;
    struct json_object *root;
    enum json_tokener_error jerr;
    size_t end;
    json_conv_t c = {0};
    int rc = -1;

    if (len > INT32_MAX) {
        snprintf(err, errlen, JSON_ERR "too large (%zu bytes)", len);
        return -1;
    }
    tok = json_tokener_new();
    if (!tok) {
        snprintf(err, errlen, "out of memory parsing JSON");
        return -1;
    }
    /* Trailing bytes are ours to judge, with a clearer message. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS);
    /* A JSON null parses to a NULL object: success is the error code. */
    root = json_tokener_parse_ex(tok, json, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A number or literal at the very end is complete only once the
         * tokener sees a terminator: give it the NUL it would have had. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr != json_tokener_success) {
        int empty = 1;
        for (size_t i = 0; i < len && empty; i++)
            empty = is_json_ws(json[i]);
        if (empty)
            snprintf(err, errlen, JSON_ERR "empty");
        else if (jerr == json_tokener_continue ||
                 jerr == json_tokener_error_parse_eof)
            snprintf(err, errlen, JSON_ERR "unexpected end at byte %zu", len);
        else
            snprintf(err, errlen, JSON_ERR "%s at byte %zu",
                     json_tokener_error_desc(jerr), end);
        goto out;
    }
    for (size_t i = end; i < len; i++) {
        if (!is_json_ws(json[i])) {
            snprintf(err, errlen, JSON_ERR "trailing data at byte %zu", i);
            goto out;
        }
    }

    msgpack_packer_init(&c.pk, out, msgpack_sbuffer_write);
    if (pack_json(&c, root) < 0) {
        snprintf(err, errlen, "out of memory converting JSON");
        goto out;
    }
    if (c.non_finite) {
        snprintf(err, errlen,
                 JSON_ERR "NaN, Infinity or a number too large for a double");
        goto out;
    }
    if (c.maybe_clamped && find_big_int(json, len, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

/* ---- msgpack -> JSON ---- */

static int put(msgpack_sbuffer *out, const char *s, size_t n)
{
    return msgpack_sbuffer_write(out, s, n);
}

static int puts_(msgpack_sbuffer *out, const char *s)
{
    return put(out, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    size_t need;
    uint32_t cp;

    if (b < 0x80)
        return 1;
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
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return need;
}

int jq_codec_pack_text(msgpack_packer *pk, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, seq;

    while (i < n && (seq = utf8_seq(u + i, n - i)) > 0)
        i += seq;
    if (i == n)
        return msgpack_pack_str_with_body(pk, p, n);
    return msgpack_pack_bin_with_body(pk, p, n);
}

int jq_codec_json_string(msgpack_sbuffer *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* s[run..i) is copied verbatim */
    char esc[8];

    /* An empty str may come with no bytes at all (NULL): NULL + 0 is
     * undefined, so it never reaches the copy below. */
    if (len == 0)
        return put(out, "\"\"", 2);
    if (put(out, "\"", 1) < 0)
        return -1;
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
            if (put(out, (const char *)s + run, i - run) < 0 || puts_(out, e) < 0)
                return -1;
            i += 1;
            run = i;
        } else {
            i += seq;
        }
    }
    if (put(out, (const char *)s + run, i - run) < 0)
        return -1;
    return put(out, "\"", 1);
}

/* Shortest %g form that reads back as the same value (as a float when
 * `single`), with ".0" added when it would otherwise read as an integer. */
static int put_float(msgpack_sbuffer *out, double d, int single)
{
    char buf[40];
    int prec;

    if (!isfinite(d))
        return puts_(out, "null");
    for (prec = single ? 6 : 15; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (single ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d)
            break;
    }
    if (prec == 17)
        snprintf(buf, sizeof(buf), "%.17g", d);
    if (!strpbrk(buf, ".eE"))
        strcat(buf, ".0");
    return puts_(out, buf);
}

#define KEY_JSON_MAX 1024

int jq_codec_msgpack_to_json(const msgpack_object *obj, msgpack_sbuffer *out)
{
    char buf[64];

    switch (obj->type) {
    case MSGPACK_OBJECT_NIL:
        return puts_(out, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return puts_(out, obj->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, sizeof(buf), "%" PRIu64, obj->via.u64);
        return puts_(out, buf);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, sizeof(buf), "%" PRId64, obj->via.i64);
        return puts_(out, buf);
    case MSGPACK_OBJECT_FLOAT32:
        return put_float(out, obj->via.f64, 1);
    case MSGPACK_OBJECT_FLOAT64:
        return put_float(out, obj->via.f64, 0);
    case MSGPACK_OBJECT_STR:
        return jq_codec_json_string(out, obj->via.str.ptr, obj->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return jq_codec_json_string(out, obj->via.bin.ptr, obj->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        snprintf(buf, sizeof(buf), "\"<ext type %d, %" PRIu32 " bytes>\"",
                 (int)obj->via.ext.type, obj->via.ext.size);
        return puts_(out, buf);
    case MSGPACK_OBJECT_ARRAY:
        if (put(out, "[", 1) < 0)
            return -1;
        for (uint32_t i = 0; i < obj->via.array.size; i++) {
            if ((i > 0 && put(out, ",", 1) < 0) ||
                jq_codec_msgpack_to_json(&obj->via.array.ptr[i], out) < 0)
                return -1;
        }
        return put(out, "]", 1);
    case MSGPACK_OBJECT_MAP:
        if (put(out, "{", 1) < 0)
            return -1;
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            const msgpack_object *k = &obj->via.map.ptr[i].key;
            if (i > 0 && put(out, ",", 1) < 0)
                return -1;
            if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN) {
                if (jq_codec_msgpack_to_json(k, out) < 0)
                    return -1;
            } else {
                /* JSON keys are strings: write the key's own JSON text as
                 * one, e.g. 1 -> "1", [1,2] -> "[1,2]". Escaping doubles
                 * the backslashes of a key inside a key at each level, so
                 * 32 nested map keys would take 2^32 bytes (found by
                 * tests/fuzz/fuzz_msgpack): a key's text longer than
                 * KEY_JSON_MAX is named by its size instead. */
                msgpack_sbuffer kb;
                msgpack_sbuffer_init(&kb);
                int r = jq_codec_msgpack_to_json(k, &kb);
                if (r == 0 && kb.size > KEY_JSON_MAX) {
                    snprintf(buf, sizeof(buf), "\"<key of %zu bytes of JSON>\"", kb.size);
                    r = puts_(out, buf);
                } else if (r == 0) {
                    r = jq_codec_json_string(out, kb.data ? kb.data : "", kb.size);
                }
                msgpack_sbuffer_destroy(&kb);
                if (r < 0)
                    return -1;
            }
            if (put(out, ":", 1) < 0 ||
                jq_codec_msgpack_to_json(&obj->via.map.ptr[i].val, out) < 0)
                return -1;
        }
        return put(out, "}", 1);
    }
    return puts_(out, "null");
}

int jq_codec_bytes_to_json(const char *buf, size_t len, msgpack_sbuffer *out,
                           char *err, size_t errlen)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc;

    if (jq_codec_check_msgpack(buf, len, err, errlen) < 0)
        return -1;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        /* The check above accepts only what msgpack-c can unpack, so this
         * is memory. */
        msgpack_unpacked_destroy(&u);
        snprintf(err, errlen, "out of memory unpacking msgpack");
        return -1;
    }
    rc = jq_codec_msgpack_to_json(&u.data, out);
    if (rc < 0)
        snprintf(err, errlen, "out of memory writing JSON");
    msgpack_unpacked_destroy(&u);
    return rc;
}

const msgpack_object *jq_codec_map_get(const msgpack_object *obj,
                                       const char *key)
{
    size_t klen;

    if (!obj || obj->type != MSGPACK_OBJECT_MAP || !key)
        return NULL;
    klen = strlen(key);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &obj->via.map.ptr[i].val;
    }
    return NULL;
}
