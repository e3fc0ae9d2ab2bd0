/* libFuzzer target: the jobq command's JSON output of arbitrary result
 * bytes (jq_json_msgpack in producer/cli_util.c): a worker's result is
 * whatever a handler wrote, so `jobq enqueue --wait` and `jobq dead show`
 * must print valid JSON for any bytes at all. json-c is the judge. */

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (!f) return 0;
    jq_json_msgpack(f, (const char *)data, size);
    fclose(f);
    /* Deep enough for msgpack-c's 32 levels of nesting. */
    json_tokener *tok = json_tokener_new_ex(64);
    /* With the NUL that open_memstream adds: json-c needs a byte after a
     * bare number to know that it ended. A JSON null parses to NULL. */
    if (memchr(out, '\0', outlen)) {
        fprintf(stderr, "NUL byte in JSON output\n");
        abort();
    }
    json_object *o = json_tokener_parse_ex(tok, out, (int)outlen + 1);
    size_t end = json_tokener_get_parse_end(tok);
    if (json_tokener_get_error(tok) != json_tokener_success || end < outlen) {
        fprintf(stderr, "invalid JSON output (%zu bytes): %.*s\n", outlen,
                (int)(outlen > 400 ? 400 : outlen), out);
        abort();
    }
    json_object_put(o);
    json_tokener_free(tok);
    free(out);
    return 0;
}
