/* Payload encodings (see codec.h): JSON text -> msgpack through json-c.
 *
 * Choices the header leaves open:
 * - JSON integers outside the 64-bit range (below INT64_MIN, above
 *   UINT64_MAX) are an error, not a float: a silent float would change an id
 *   or a counter without anyone noticing. json-c clamps them, so a clamped
 *   value sends us back to the text to tell a real limit from a clamp.
 * - NaN and infinities (json-c accepts "NaN", and 1e400 overflows) are an
 *   error in JSON input.
 * - json-c keeps object keys as C strings: a key holding \u0000 is cut
 *   there, and of duplicate keys the last wins. Values keep every byte. */

#include "codec.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_ERR "payload is not valid JSON: "

typedef struct json_conv {
    msgpack_packer pk;
    int maybe_clamped; /* saw INT64_MIN or UINT64_MAX: check the text */
    int non_finite;    /* saw NaN or an infinity */
} json_conv_t;

static int pack_json(json_conv_t *c, struct json_object *o);

static int pack_int(json_conv_t *c, struct json_object *o) {
    /* json-c keeps values above INT64_MAX as uint64 and reports them as
     * INT64_MAX through get_int64. */
    int64_t v = json_object_get_int64(o);
    if (v < 0) {
        if (v == INT64_MIN) c->maybe_clamped = 1;
        return msgpack_pack_int64(&c->pk, v);
    }
    if (v == INT64_MAX) {
        uint64_t u = json_object_get_uint64(o);
        if (u == UINT64_MAX) c->maybe_clamped = 1;
        return msgpack_pack_uint64(&c->pk, u);
    }
    return msgpack_pack_uint64(&c->pk, (uint64_t)v);
}

static int pack_array(json_conv_t *c, struct json_object *o) {
    size_t n = json_object_array_length(o);
    if (msgpack_pack_array(&c->pk, n) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (pack_json(c, json_object_array_get_idx(o, i)) < 0) return -1;
    }
    return 0;
}

static int pack_object(json_conv_t *c, struct json_object *o) {
    if (msgpack_pack_map(&c->pk, (size_t)json_object_object_length(o)) < 0) return -1;
    json_object_object_foreach(o, key, val) {
        size_t klen = strlen(key);
        if (msgpack_pack_str(&c->pk, klen) < 0 || msgpack_pack_str_body(&c->pk, key, klen) < 0 ||
            pack_json(c, val) < 0)
            return -1;
    }
    return 0;
}

static int pack_json(json_conv_t *c, struct json_object *o) {
    msgpack_packer *pk = &c->pk;

    switch (json_object_get_type(o)) {
        case json_type_null: return msgpack_pack_nil(pk);
        case json_type_boolean:
            return json_object_get_boolean(o) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        case json_type_double: {
            double d = json_object_get_double(o);
            if (!isfinite(d)) c->non_finite = 1;
            return msgpack_pack_double(pk, d);
        }
        case json_type_int: return pack_int(c, o);
        case json_type_string: {
            int len = json_object_get_string_len(o);
            if (msgpack_pack_str(pk, (size_t)len) < 0) return -1;
            return msgpack_pack_str_body(pk, json_object_get_string(o), (size_t)len);
        }
        case json_type_array: return pack_array(c, o);
        case json_type_object: return pack_object(c, o);
    }
    return -1;
}

/* Finds an integer literal of the (already valid) JSON text that does not
 * fit in 64 bits. Outside strings, valid JSON has digits only in numbers. */
static int find_big_int(const char *s, size_t len, char *err, size_t errlen) {
    size_t i = 0;
    while (i < len) {
        if (s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\') i++;
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
            if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') is_int = 0;
            i++;
        }
        if (!is_int) continue;
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
                     (int)(n > 24 ? 24 : n), s + start, n > 24 ? "..." : "", start);
            return -1;
        }
    }
    return 0;
}

static int is_json_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* Parses json[0..len) with tok into *root (NULL for a JSON null).
 * Returns 0, or -1 with err. */
static int parse(struct json_tokener *tok, const char *json, size_t len, struct json_object **root,
                 char *err, size_t errlen) {
    enum json_tokener_error jerr;
    size_t end;

    /* Trailing bytes are ours to judge, with a clearer message. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS);
    /* A JSON null parses to a NULL object: success is the error code. */
    *root = json_tokener_parse_ex(tok, json, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* A number or literal at the very end is complete only once the
         * tokener sees a terminator: give it the NUL it would have had. */
        *root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    if (jerr != json_tokener_success) {
        int empty = 1;
        for (size_t i = 0; i < len && empty; i++) empty = is_json_ws(json[i]);
        if (empty)
            snprintf(err, errlen, JSON_ERR "empty");
        else if (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof)
            snprintf(err, errlen, JSON_ERR "unexpected end at byte %zu", len);
        else
            snprintf(err, errlen, JSON_ERR "%s at byte %zu", json_tokener_error_desc(jerr), end);
        return -1;
    }
    for (size_t i = end; i < len; i++) {
        if (!is_json_ws(json[i])) {
            snprintf(err, errlen, JSON_ERR "trailing data at byte %zu", i);
            return -1;
        }
    }
    return 0;
}

int jq_codec_json_to_msgpack(const char *json, size_t len, msgpack_sbuffer *out, char *err,
                             size_t errlen) {
    struct json_tokener *tok;
    struct json_object *root = NULL;
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
    if (parse(tok, json, len, &root, err, errlen) < 0) goto out;
    msgpack_packer_init(&c.pk, out, msgpack_sbuffer_write);
    if (pack_json(&c, root) < 0) {
        snprintf(err, errlen, "out of memory converting JSON");
        goto out;
    }
    if (c.non_finite) {
        snprintf(err, errlen, JSON_ERR "NaN, Infinity or a number too large for a double");
        goto out;
    }
    if (c.maybe_clamped && find_big_int(json, len, err, errlen) < 0) goto out;
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}
