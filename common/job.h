#ifndef JQ_JOB_H
#define JQ_JOB_H

/* A job as it arrives: the fields of a stream entry (PROTOCOL §1), parsed
 * and validated. The job borrows every string from the field array it was
 * parsed from: the owner of that array (the consumer keeps the hiredis reply
 * element) must keep it alive as long as the job. */

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define JQ_NAME_MAX_BUF (JQ_NAME_MAX + 1)

#define JQ_DEFAULT_MAX_ATTEMPTS 3
#define JQ_DEFAULT_RESULT_TTL 86400
#define JQ_ENTRY_ID_MAX 48

/* What one job may carry (PROTOCOL §1, "Limits"). A job moves between the
 * stream, its job hash and the sorted sets in Lua scripts, and a script
 * passes a command at most about 8,000 arguments (Lua's unpack): the
 * promotion's XADD carries the job's fields plus id and attempt, so the
 * field count is bounded well below that. Names and values other than the
 * payload (bounded by --max-payload) are bounded so that the fields of one
 * job stay small beside it. An entry past a bound is dead-lettered on
 * arrival with the reason, every field kept in its job hash. */
#define JQ_JOB_MAX_FIELDS 1000 /* fields besides id and attempt */
#define JQ_JOB_MAX_NAME 256    /* bytes of a field's name */
#define JQ_JOB_MAX_VALUE 65536 /* bytes of a value other than payload */

typedef enum { JQ_ENC_MSGPACK = 0, JQ_ENC_JSON = 1 } jq_enc_t;

typedef struct jq_str {
    const char *p;
    size_t len;
} jq_str_t;

typedef struct jq_job_limits {
    long long max_payload; /* bytes; --max-payload */
    long long timeout_ms;  /* default when the entry has no timeout_ms */
} jq_job_limits_t;

typedef struct jq_job {
    char entry_id[JQ_ENTRY_ID_MAX]; /* stream entry id "ms-seq" */
    char id[JQ_NAME_MAX_BUF];       /* job id: `id` field, else entry id */
    jq_str_t type;                  /* handler name (borrowed) */
    jq_str_t payload;               /* payload bytes (borrowed), if has_payload */
    int has_payload;
    jq_enc_t enc;
    long long chunks;       /* 0: payload inline */
    long long size;         /* with chunks: total payload bytes */
    long long max_attempts; /* >= 1 */
    long long timeout_ms;   /* >= 1 */
    long long result_ttl;   /* seconds, >= 0 */
    long long attempt;      /* attempts already made, >= 0 */
    int notify;             /* `notify 1`: a client waits (PROTOCOL 1.2 §3) */
    jq_str_t unique;        /* `unique KEY` (borrowed; len 0: none): the key
                               <p>:{q}:unique:KEY this job holds (§10) */
    long long unique_until; /* `unique_until`, ms since the epoch; 0: none */
    jq_str_t batch;         /* `batch ID` (borrowed; len 0: none): the
                               batch this job counts in (§12) */
    int64_t enqueued_ms;    /* from the entry id's time part */
    uint64_t entry_seq;     /* the entry id's sequence part */
} jq_job_t;

/* The two numbers of a stream entry id "ms-seq", parsed by hand: ids are
 * parsed and compared a few times per job, and strtoull's locale-aware
 * parsing showed in the worker's profile (6%). A missing or bad part
 * reads as 0. */
void jq_entry_id_parts(const char *id, uint64_t *ms, uint64_t *seq);

/* Parses the n/2 field/value pairs fv[0..n) of the entry `entry_id` into
 * *job. Unknown fields are ignored (producers may add their own). Returns 0,
 * or -1 with err naming the problem: "missing field: type", "bad field
 * max_attempts: 'x' (want an integer >= 1)", "unknown enc: xml",
 * "chunks needs an id field", "payload too large: 70000000 bytes >
 * max-payload 67108864", "too many fields: 1001 (at most 1000 besides id
 * and attempt)". On error job->id is still filled when the entry
 * names a valid id (else the entry id), so the job can be dead-lettered
 * under its id. */
int jq_job_parse(jq_job_t *job, const char *entry_id, const jq_str_t *fv, size_t n,
                 const jq_job_limits_t *lim, char *err, size_t errlen);

/* Fields a retry or a dead letter carries over into the job hash: true for
 * the protocol's job fields and producers' own fields, false for ones jobq
 * writes itself (error, attempt, failed_at, and priority: the level is the
 * stream the entry was read from, written again by the worker). */
int jq_job_field_kept(const char *name, size_t len);

/* Parses a decimal integer in [min, max] from s[0..len): an optional '-'
 * and digits, nothing before or after them. Returns 0 or -1. The one
 * number parser of the tree (wire fields, options, flags). */
int jq_parse_ll(const char *s, size_t len, long long min, long long max, long long *out);

/* Checks a batch id s[0..len) (PROTOCOL §12: "<queue>:<name>", a valid
 * name as a whole, split at its last ':', both parts non-empty) and puts
 * the length of its queue part into *qlen. Returns 0 or -1. */
int jq_batch_id_split(const char *s, size_t len, size_t *qlen);

/* Milliseconds since the epoch, wall clock. */
int64_t jq_now_ms(void);

#endif
