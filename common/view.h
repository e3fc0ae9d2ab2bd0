#ifndef JQ_VIEW_H
#define JQ_VIEW_H

/* How a job is shown to people, as JSON: the fields of its hash, and its
 * payload either decoded in full (`jobq dead show`) or as a bounded
 * preview (the dashboard): JSON when it decodes, a hex dump of the first
 * bytes when it is binary, too large to decode, or not what its encoding
 * says. Shared by the `jobq` command and the consumer's dashboard so that
 * both show a job the same way.
 *
 * Every writer appends to a caller-owned msgpack_sbuffer (used here as a
 * plain growable buffer) and returns 0, or -1 when out of memory. */

#include <stddef.h>
#include <msgpack.h>

#include "jobq/jobq.h" /* jq_dead_job_t: the fields shown */

/* Payloads larger than this are never decoded for a preview: the preview
 * shows their first bytes in hex instead. */
#define JQ_VIEW_DECODE_MAX (1024 * 1024)
/* Bytes shown in a hex preview. */
#define JQ_VIEW_HEX_BYTES 512

/* Appends `,"name":value` for each field of job's hash except "payload"
 * and the names in skip (NULL-terminated; skip may be NULL). Counters
 * (attempt, max_attempts, timeout_ms, ...) are written as numbers, every
 * other value as a JSON string of its bytes. */
int jq_view_fields(msgpack_sbuffer *out, const jq_dead_job_t *job, const char *const *skip);

/* Appends payload bytes p[0..len) as one JSON value: decoded from msgpack,
 * or (json_enc) JSON text checked and re-encoded, so that bad input can
 * never break the JSON around it; a JSON string of the raw bytes when they
 * do not decode; null when p is NULL. */
int jq_view_payload_json(msgpack_sbuffer *out, const char *p, size_t len, int json_enc);

/* Appends a preview object of a payload of `total` bytes of which p[0..len)
 * are at hand (len < total when only a head was read):
 *   {"kind":K,"size":total,"truncated":bool,"text":"..."}
 * K is "none" (no payload), "json" (text is the payload as JSON, cut to
 * text_max bytes on a character boundary when longer), "binary" (a msgpack
 * bin: text is a hex dump of its first JQ_VIEW_HEX_BYTES bytes) or "raw"
 * (too large to decode, or not valid msgpack or JSON: a hex dump of the
 * stored bytes). truncated says the text does not show everything. */
int jq_view_payload_preview(msgpack_sbuffer *out, const char *p, size_t len, size_t total,
                            int json_enc, size_t text_max);

#endif
