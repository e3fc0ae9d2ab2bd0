/* libFuzzer target: the msgpack checker (jq_codec_check_msgpack), against
 * msgpack-c itself. The checker promises to accept exactly what
 * msgpack_unpack accepts as one whole object, so the two must agree on
 * every input; what both accept must also turn into JSON. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static int big_counts(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0xdc && p[i] <= 0xdf) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[JQ_ERR_LEN];
    const char *buf = (const char *)data;
    int ok = jq_codec_check_msgpack(buf, size, err, sizeof(err)) == 0;
    if (!ok && err[0] == '\0') abort();

    /* msgpack-c allocates a container's elements by the count it
     * announces before reading them: a 5-byte array32 asks for gigabytes
     * (ASan fills them, slowly). The checker calls a count beyond the
     * bytes left "truncated", and msgpack-c can never accept such an
     * input whole; so msgpack-c judges a truncated input only when no
     * 16- or 32-bit container header can be in it. */
    if (!ok && strstr(err, "truncated") && big_counts(data, size)) return 0;
    msgpack_zone *z = msgpack_zone_new(512);
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack(buf, size, &off, z, &obj);
    int whole = rc == MSGPACK_UNPACK_SUCCESS && off == size;
    if (ok && !whole) abort();
    if (!ok && whole) abort();
    if (whole) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (jq_codec_msgpack_to_json(&obj, &sb) != 0) abort();
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_zone_free(z);
    return 0;
}
