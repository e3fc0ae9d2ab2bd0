#ifndef JQ_PROCWIRE_H
#define JQ_PROCWIRE_H

/* The frames between a worker and its handler processes (procpool.h), as
 * docs/HANDLERS.md documents them: a 4-byte big-endian length, then that
 * many bytes holding one msgpack map with an "op" key.
 *
 *   jobq -> process: job    {op, seq, id, type, queue, attempt, deadline_ms, payload}
 *                    cancel {op, seq}
 *   process -> jobq: hello    {op, protocol, types, max_inflight}
 *                    result   {op, seq, result}
 *                    error    {op, seq, error, permanent, retry_after_ms}
 *                    progress {op, seq, fraction, message}
 *
 * Pure encoding and decoding: no I/O, no state, unit-tested alone. */

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include <jobq/handler.h>

#define JQ_PROC_PROTOCOL 1
#define JQ_PROC_HDR 4 /* the length prefix */

typedef enum {
    JQ_PROC_HELLO = 1,
    JQ_PROC_RESULT,
    JQ_PROC_ERROR,
    JQ_PROC_PROGRESS,
} jq_proc_op_t;

/* One frame from a process, decoded. The pointers borrow from the
 * msgpack_unpacked the frame was decoded into: valid until it is
 * destroyed. */
typedef struct jq_proc_msg {
    jq_proc_op_t op;
    uint64_t seq;                /* result, error, progress */
    const msgpack_object *value; /* result's result (NULL: absent, nil) */
    const char *error;           /* error: the reason (not NUL-terminated) */
    size_t error_len;
    int permanent;            /* error: never retry */
    long long retry_after_ms; /* error: retry after this, no attempt
                                    used (0: a plain failure) */
    double fraction;          /* progress: 0.0 to 1.0 */
    const char *message;      /* progress: NULL, or its text (not
                                    NUL-terminated) */
    size_t message_len;
    const msgpack_object *types; /* hello: an array of str */
    long long max_inflight;      /* hello: 1 when absent */
} jq_proc_msg_t;

/* Appends to out one job frame for task t, numbered seq. Returns 0, or -1
 * when out of memory (out then holds a partial frame: the caller cuts it
 * back to its size before the call). */
int jq_procwire_job(msgpack_sbuffer *out, uint64_t seq, const jq_task_t *t);

/* Appends a cancel frame for seq. Returns 0 or -1 as jq_procwire_job. */
int jq_procwire_cancel(msgpack_sbuffer *out, uint64_t seq);

/* Decodes one frame's body (body[0..len), the bytes after the length) into
 * m, unpacking into u (initialised by the caller, destroyed by it after m
 * is used). Returns 0, or -1 with err saying what is wrong: not msgpack,
 * bytes left over, not a map, no or an unknown op, a field of the wrong
 * type or missing. */
int jq_procwire_parse(const char *body, size_t len, msgpack_unpacked *u, jq_proc_msg_t *m,
                      char *err, size_t errlen);

/* The length a frame header announces. */
static inline uint32_t jq_procwire_len(const unsigned char *hdr) {
    return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

#endif
