/* libFuzzer target: JSON -> msgpack (jq_codec_json_to_msgpack), the path of
 * every `enc json` payload. What it produces must be one valid msgpack
 * object, and that object must turn back into JSON that converts again to
 * the same msgpack bytes (a round trip is stable after one pass). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[JQ_ERR_LEN];
    msgpack_sbuffer mp, js, mp2;
    msgpack_sbuffer_init(&mp);
    msgpack_sbuffer_init(&js);
    msgpack_sbuffer_init(&mp2);
    if (jq_codec_json_to_msgpack((const char *)data, size, &mp, err, sizeof(err)) == 0) {
        if (jq_codec_check_msgpack(mp.data, mp.size, err, sizeof(err)) != 0) abort();
        if (jq_codec_bytes_to_json(mp.data, mp.size, &js, err, sizeof(err)) != 0) abort();
        /* Our own JSON output must be accepted as input. */
        if (jq_codec_json_to_msgpack(js.data, js.size, &mp2, err, sizeof(err)) != 0) abort();
    } else if (err[0] == '\0') {
        abort();
    }
    msgpack_sbuffer_destroy(&mp);
    msgpack_sbuffer_destroy(&js);
    msgpack_sbuffer_destroy(&mp2);
    return 0;
}
