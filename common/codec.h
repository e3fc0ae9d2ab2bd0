#ifndef JQ_CODEC_H
#define JQ_CODEC_H

/* Payload encodings: checking msgpack bytes (codec.c), JSON -> msgpack
 * through json-c (codec_from_json.c), and msgpack -> JSON text for people
 * and scripts (codec_to_json.c).
 *
 * Every function that produces bytes appends them to a caller-owned
 * msgpack_sbuffer (msgpack_sbuffer_init / msgpack_sbuffer_destroy); on
 * failure the buffer may hold partial output and `err` holds a sentence
 * that names the problem. */

#include <stddef.h>
#include <msgpack.h>

#define JQ_ERR_LEN 256

/* Checks that buf[0..len) is exactly one msgpack object: no truncation, no
 * trailing bytes. Returns 0, or -1 with err like
 * "payload is not valid msgpack: truncated at byte 3 of 5". */
int jq_codec_check_msgpack(const char *buf, size_t len, char *err, size_t errlen);

/* Parses JSON text json[0..len) and appends the same value as msgpack to
 * out. JSON strings become msgpack str, integers int (uint for >= 0),
 * other numbers float64, null nil, arrays and objects array and map.
 * Returns 0, or -1 with err like "payload is not valid JSON: ...". */
int jq_codec_json_to_msgpack(const char *json, size_t len, msgpack_sbuffer *out, char *err,
                             size_t errlen);

/* Appends obj as JSON text (no NUL) to out. bin becomes a JSON string of its
 * bytes (invalid UTF-8 escaped as \u00XX per byte), ext a string
 * "<ext type N, M bytes>", map keys that are not strings are converted to
 * their JSON text (one longer than 1024 bytes becomes "<key of N bytes of
 * JSON>", as keys in keys would double in size at each level). Returns 0,
 * or -1 if out of memory. */
int jq_codec_msgpack_to_json(const msgpack_object *obj, msgpack_sbuffer *out);

/* Appends s[0..len) as a JSON string: quotes, backslashes and control
 * characters escaped, each byte of invalid UTF-8 as \u00XX, so that any
 * bytes give valid JSON. The one JSON string escaper of the project.
 * Returns 0, or -1 if out of memory. */
int jq_codec_json_string(msgpack_sbuffer *out, const char *s, size_t len);

/* Convenience: unpacks buf[0..len) and appends its JSON text to out.
 * Returns 0, or -1 with err if buf is not valid msgpack. */
int jq_codec_bytes_to_json(const char *buf, size_t len, msgpack_sbuffer *out, char *err,
                           size_t errlen);

/* Packs p[0..n) as a msgpack str when it is valid UTF-8, else as bin (a
 * command's output, an HTTP body). Returns 0, or -1 if out of memory. */
int jq_codec_pack_text(msgpack_packer *pk, const char *p, size_t n);

/* Finds key (a str) in map obj. Returns the value (borrowed from obj) or NULL
 * if obj is not a map or has no such key. */
const msgpack_object *jq_codec_map_get(const msgpack_object *obj, const char *key);

#endif
