/* libFuzzer target: a stream entry's fields -> jq_job_parse (PROTOCOL §1).
 * The input is the field/value list with each string ended by a 0xff byte
 * (a byte no field name uses, but values may hold every other byte, NUL
 * included), as any producer's XADD can send it. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "job.h"

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jq_str_t fv[MAX_FIELDS];
    size_t n = 0, start = 0;
    /* Each field is copied to its own allocation so that ASan sees a read
     * one byte past any of them. */
    char *own[MAX_FIELDS];
    for (size_t i = 0; i <= size && n < MAX_FIELDS; i++) {
        if (i < size && data[i] != 0xff) continue;
        size_t len = i - start;
        own[n] = malloc(len ? len : 1);
        if (len) memcpy(own[n], data + start, len);
        fv[n].p = own[n];
        fv[n].len = len;
        n++;
        start = i + 1;
    }
    jq_job_t job;
    char err[JQ_ERR_LEN];
    jq_job_limits_t lim = {.max_payload = 1 << 20, .timeout_ms = 1000};
    memset(&job, 0xaa, sizeof(job));
    int rc = jq_job_parse(&job, "1700000000000-7", fv, n, &lim, err, sizeof(err));
    /* Whatever happens, the id is a C string that fits its buffer. */
    if (strnlen(job.id, sizeof(job.id)) == sizeof(job.id)) abort();
    if (rc == 0) {
        /* What the parser promises a valid job holds (job.h). */
        if (job.max_attempts < 1 || job.timeout_ms < 1 || job.result_ttl < 0 || job.attempt < 0)
            abort();
        if (job.type.len == 0 || job.type.len > JQ_NAME_MAX) abort();
        if (job.has_payload && job.payload.len > (size_t)lim.max_payload) abort();
        if (job.chunks && (job.size < 0 || job.size > lim.max_payload)) abort();
    } else if (strnlen(err, sizeof(err)) == sizeof(err) || err[0] == '\0') {
        abort();
    }
    for (size_t i = 0; i < n; i++) jq_job_field_kept(fv[i].p, fv[i].len);
    for (size_t i = 0; i < n; i++) free(own[i]);
    return 0;
}
