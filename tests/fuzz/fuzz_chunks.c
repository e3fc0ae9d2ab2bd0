/* libFuzzer target: chunk reassembly (PROTOCOL §1, consumer/chunks.c). A
 * chunked msgpack payload is fed to msgpack-c's streaming unpacker chunk by
 * chunk, exactly as chunks.c does it (reserve, copy, consumed, next after
 * every read), and must give the same verdict and the same object as the
 * whole payload unpacked at once (what an inline payload gets). The first
 * input byte picks the chunk size (1..256), so the fuzzer explores every
 * place a chunk boundary can fall, inside headers and strings included. */

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

    /* As in fuzz_msgpack.c: msgpack-c allocates by announced counts, so
     * inputs the checker calls truncated are streamed only when no 16- or
     * 32-bit container header can be in them. */
    char err[JQ_ERR_LEN];
    int checked = jq_codec_check_msgpack(p, len, err, sizeof(err)) == 0;
    if (!checked && strstr(err, "truncated"))
        for (size_t i = 0; i < len; i++)
            if ((uint8_t)p[i] >= 0xdc && (uint8_t)p[i] <= 0xdf) return 0;

    /* The whole payload at once: the inline path's verdict. */
    msgpack_zone *z = msgpack_zone_new(512);
    msgpack_object whole;
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack(p, len, &off, z, &whole);
    int whole_ok = rc == MSGPACK_UNPACK_SUCCESS && off == len;

    /* Chunk by chunk, as chunks.c streams it (its buffer sized to the
     * announced size up front, so it never grows). */
    msgpack_unpacker up;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    if (!msgpack_unpacker_init(&up, len + 1)) abort();
    int verdict = 0; /* 1 ok, -1 bad */
    size_t fed = 0;
    while (!verdict) {
        size_t n = len - fed < step ? len - fed : step;
        if (n > 0) {
            if (!msgpack_unpacker_reserve_buffer(&up, n)) abort();
            memcpy(msgpack_unpacker_buffer(&up), p + fed, n);
            msgpack_unpacker_buffer_consumed(&up, n);
            fed += n;
        }
        int last = fed == len;
        msgpack_unpack_return r = msgpack_unpacker_next(&up, &res);
        if (r == MSGPACK_UNPACK_SUCCESS) {
            size_t parsed = fed - (up.used - up.off);
            verdict = (parsed == len && last) ? 1 : -1;
        } else if (r == MSGPACK_UNPACK_CONTINUE) {
            if (last) verdict = -1;
        } else {
            verdict = -1;
        }
    }
    /* msgpack_unpack refuses announced counts it cannot allocate at once;
     * the streaming unpacker refuses them the same way. */
    if ((verdict == 1) != whole_ok) abort();
    if (verdict == 1 && !same(&whole, &res.data)) abort();
    /* And the checker, run on the failure path of both, agrees. */
    if ((verdict == 1) != checked) abort();
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    msgpack_zone_free(z);
    return 0;
}
