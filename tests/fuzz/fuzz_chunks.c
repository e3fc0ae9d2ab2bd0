/* libFuzzer target: chunk reassembly (PROTOCOL §1, consumer/worker/chunks.c). A
 * chunked msgpack payload is copied into msgpack-c's streaming unpacker
 * chunk by chunk, exactly as chunks.c does it (its buffer sized to the
 * payload once; reserve, copy, consumed per chunk), then checked whole and
 * unpacked once, and must give the same verdict and the same object as the
 * inline path (the checker, then msgpack_unpack). The first input byte
 * picks the chunk size (1..256), so the fuzzer explores every place a chunk
 * boundary can fall, inside headers and strings included. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* Equal as bytes once packed again: msgpack_object_equal compares floats
 * with ==, and a NaN is never equal to itself. */
static int same(const msgpack_object *a, const msgpack_object *b) {
    msgpack_sbuffer x, y;
    msgpack_packer px, py;
    msgpack_sbuffer_init(&x);
    msgpack_sbuffer_init(&y);
    msgpack_packer_init(&px, &x, msgpack_sbuffer_write);
    msgpack_packer_init(&py, &y, msgpack_sbuffer_write);
    msgpack_pack_object(&px, *a);
    msgpack_pack_object(&py, *b);
    int eq = x.size == y.size && (x.size == 0 || memcmp(x.data, y.data, x.size) == 0);
    msgpack_sbuffer_destroy(&x);
    msgpack_sbuffer_destroy(&y);
    return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t step = (size_t)data[0] + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;

    /* The inline path: the checker, then msgpack-c on what it accepts
     * (never on the rest: msgpack-c reserves by announced counts). */
    char err[JQ_ERR_LEN];
    int whole_ok = jq_codec_check_msgpack(p, len, err, sizeof(err)) == 0;
    msgpack_zone *z = msgpack_zone_new(512);
    msgpack_object whole;
    size_t off = 0;
    if (whole_ok &&
        (msgpack_unpack(p, len, &off, z, &whole) != MSGPACK_UNPACK_SUCCESS || off != len))
        abort(); /* the checker accepts exactly what msgpack-c unpacks whole */

    /* Chunk by chunk, as chunks.c gathers it. */
    msgpack_unpacker up;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    if (!msgpack_unpacker_init(&up, len + 1)) abort();
    for (size_t fed = 0; fed < len;) {
        size_t n = len - fed < step ? len - fed : step;
        if (!msgpack_unpacker_reserve_buffer(&up, n)) abort();
        memcpy(msgpack_unpacker_buffer(&up), p + fed, n);
        msgpack_unpacker_buffer_consumed(&up, n);
        fed += n;
    }
    /* Reassembled byte for byte, so the same verdict... */
    if (up.used - up.off != len || (len && memcmp(up.buffer + up.off, p, len) != 0)) abort();
    int ok = jq_codec_check_msgpack(up.buffer + up.off, len, err, sizeof(err)) == 0;
    if (ok != whole_ok) abort();
    /* ...and the same object from the streaming unpacker. */
    if (ok) {
        if (msgpack_unpacker_next(&up, &res) != MSGPACK_UNPACK_SUCCESS || up.used != up.off)
            abort();
        if (!same(&whole, &res.data)) abort();
    }
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    msgpack_zone_free(z);
    return 0;
}
