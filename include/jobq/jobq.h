#ifndef JQ_JOBQ_H
#define JQ_JOBQ_H

/* libjobq: the producer's side of PROTOCOL.md over one synchronous hiredis
 * connection. Enqueue jobs (inline, chunked, delayed), wait for results,
 * handle dead jobs, pause queues and read a queue's figures.
 *
 * A client is not thread-safe: use one per thread. Every call that talks to
 * Redis returns 0 on success and a negative value on failure: -1 with a
 * sentence in err (err may be NULL), or one of the JQ_CLIENT_E* codes below
 * where the caller must tell a missing thing or a timeout from a fault. When
 * the connection breaks, the call fails and the next call reconnects.
 *
 * Queue names and job ids must pass jq_name_valid(): 1..128 bytes of
 * [A-Za-z0-9_.:-]; calls that take them check.
 *
 * Installed as <jobq/jobq.h>; link with `pkg-config --libs jobq`. This
 * header stands alone: it includes no header of the source tree. */

#include <stddef.h>
#include <stdint.h>

/* The same definition as common/keys.h (identical redefinitions are legal
 * C, a different one is a compile error where both are included, as in
 * libjobq's own files: the two cannot drift apart). */
#define JQ_NAME_MAX 128 /* queue names and job ids: 1..128 bytes */

/* True if s[0..len) is 1..128 bytes of [A-Za-z0-9_.:-]: the rule for queue
 * names and job ids. */
int jq_name_valid(const char *s, size_t len);

#define JQ_QUEUE_DEFAULT "default"
#define JQ_CHUNK_SIZE_DEFAULT (256 * 1024)
#define JQ_CLIENT_ID_LEN (JQ_NAME_MAX + 1) /* a job id and its NUL */

#define JQ_CLIENT_ENOTFOUND (-2) /* no such job / no such dead job */
#define JQ_CLIENT_ETIMEOUT (-3)  /* jq_client_wait: the job did not finish */
#define JQ_CLIENT_EINVAL                                                                           \
    (-4) /* enqueue: a bad argument (a payload that is
                                    not JSON or msgpack, a bad name or option),
                                    refused before anything was sent */

typedef struct jq_client jq_client_t;
struct redisContext;

/* Connects to `url` (redis://[[user]:password@]host[:port][/db],
 * rediss://... for TLS, or unix:///path[?db=N], see url.h), sends AUTH and
 * SELECT as the URL says. `prefix` NULL means "jobq"; it must pass
 * jq_name_valid(). A rediss:// URL verifies the server against the
 * system's CA store, under the URL's host name (jq_client_new_tls to
 * choose). Returns a client that the caller releases with
 * jq_client_free(), or NULL with err. */
jq_client_t *jq_client_new(const char *url, const char *prefix, char *err, size_t errlen);

/* The TLS settings of a rediss:// client. NULL pointers take the
 * defaults; the strings are read during jq_client_new_tls only. The
 * server is always verified unless `insecure` (for tests: it logs nothing
 * itself, the caller should warn). TLS 1.2 is the oldest version spoken. */
typedef struct jq_client_tls {
    const char *ca_file;     /* PEM CA certificates to trust; NULL: the system's store */
    const char *cert_file;   /* client certificate (PEM, with its chain), for servers
                                that check clients; needs key_file */
    const char *key_file;    /* its private key (PEM, not encrypted) */
    const char *server_name; /* SNI and the name the server's certificate must carry;
                                NULL: the host of the URL */
    int insecure;            /* 1: do not verify the server's certificate */
} jq_client_tls_t;

/* jq_client_new() with TLS settings (tls NULL: the defaults). They apply
 * to a rediss:// URL only; with another URL they are not used. A missing
 * or unreadable file, a key that does not match its certificate, or a
 * server that does not verify fail here with err naming the file or the
 * reason. */
jq_client_t *jq_client_new_tls(const char *url, const char *prefix, const jq_client_tls_t *tls,
                               char *err, size_t errlen);

/* Closes the connection and frees c. jq_client_free(NULL) does nothing. */
void jq_client_free(jq_client_t *c);

/* The key prefix (owned by c) and the hiredis connection, for callers that
 * need a command this library lacks. The context lives until the next call
 * on c that reconnects, or jq_client_free(). Over TLS (rediss://) it is
 * NULL: its socket carries TLS records that hiredis cannot write. */
const char *jq_client_prefix(const jq_client_t *c);
struct redisContext *jq_client_context(jq_client_t *c);

/* Bounds every command (and every connect) of c to ms milliseconds, now
 * and after each reconnection, instead of the defaults (30 s per command,
 * 5 s to connect); ms <= 0 restores them. For watchers that must notice a
 * hung server quickly, like `jobq top`; never shorter than a BLPOP slice
 * (one second) on a client that waits for jobs. */
void jq_client_set_timeout(jq_client_t *c, long long ms);

/* ---- enqueue (PROTOCOL §1, §2) ---- */

typedef struct jq_enqueue_opts {
    const char *queue;      /* NULL: "default" */
    const char *id;         /* NULL: the XADD entry id; a chunked or delayed
                               job gets 16 random hex chars instead */
    long long delay_ms;     /* > 0: run no earlier than now + delay_ms */
    long long at_ms;        /* > 0: run no earlier than this (ms since the
                               epoch); wins over delay_ms */
    long long max_attempts; /* 0: the consumer's default (3) */
    long long timeout_ms;   /* 0: the consumer's default */
    long long result_ttl;   /* < 0: the default (86400 s); 0 keeps none */
    size_t chunk_size;      /* 0: 256 KiB. A larger payload goes into the
                               list <p>:{<q>}:payload:<id> in pieces of this
                               size */
    int enc_json;           /* 1: payload is JSON text (field enc json), not
                               msgpack */
} jq_enqueue_opts_t;

/* Zeroes o and sets result_ttl to -1 (the default). */
void jq_enqueue_opts_init(jq_enqueue_opts_t *o);

/* Enqueues one job of handler `type` with the payload bytes
 * payload[0..len) (msgpack, or JSON with o->enc_json; checked before
 * sending), or no payload (nil) when payload is NULL. o NULL means all
 * defaults. Adds the queue to <p>:queues. A job with an id chosen by the
 * caller replaces any result and notify list left by an earlier job of the
 * same id, in the same MULTI. Writes the job id, NUL-terminated, into
 * id_out (id_cap >= JQ_CLIENT_ID_LEN). Returns 0, JQ_CLIENT_EINVAL for a
 * bad argument (nothing sent), or -1. */
int jq_client_enqueue(jq_client_t *c, const char *type, const char *payload, size_t len,
                      const jq_enqueue_opts_t *o, char *id_out, size_t id_cap, char *err,
                      size_t errlen);

/* Flags of jq_client_enqueue_flags() and jq_client_wait_flags(). */
#define JQ_NOTIFY                                                                                  \
    1u /* enqueue: the entry carries `notify 1` (PROTOCOL 1.2
                        §3), so the consumer pushes the job's notify list
                        when it ends; wait: the job carries it, so block on
                        that list instead of polling the result hash */

/* Enqueue flags: the job's priority level within its queue (PROTOCOL.md,
 * "Priorities"): a ready high job starts before any ready normal one,
 * normal before low. Neither: normal. Both: an error. Flags, not fields of
 * jq_enqueue_opts_t, so that programs built against an older libjobq.so.1
 * keep working. */
#define JQ_HIGH 2u
#define JQ_LOW 4u

/* jq_client_enqueue() with flags (JQ_NOTIFY, JQ_HIGH or JQ_LOW, or'ed; 0:
 * none): a caller that will wait for the job with
 * jq_client_wait_flags(..., JQ_NOTIFY, ...) sets JQ_NOTIFY. Returns 0 or
 * -1. */
int jq_client_enqueue_flags(jq_client_t *c, const char *type, const char *payload, size_t len,
                            const jq_enqueue_opts_t *o, unsigned flags, char *id_out, size_t id_cap,
                            char *err, size_t errlen);

/* Job control at enqueue (docs/PROTOCOL.md §10, §12). Kept apart from
 * jq_enqueue_opts_t, whose size programs built against libjobq 1 embed. */
typedef struct jq_enqueue_ctl {
    const char *unique;      /* NULL: none. A key (a valid name): while a job
                                holding it is queued, delayed, retrying or
                                running, an enqueue with it adds nothing */
    long long unique_for_ms; /* > 0: the key is held at least this long
                                after the enqueue, even once the job ended */
    const char *batch;       /* NULL: none. A batch id from
                                jq_client_batch_create; the batch must not be
                                sealed */
    int duplicate;           /* out: 1 when the unique key was held, nothing
                                was added, and id_out is the holder's id */
} jq_enqueue_ctl_t;

/* jq_client_enqueue_flags() with job control (ctl may be NULL): a unique
 * job is taken and added in one script (atomic from any number of
 * clients); a job of a batch first counts in it (refused when the batch is
 * sealed or unknown), and the count is taken back if the job is not added.
 * Sets ctl->duplicate. Returns 0 (a duplicate is a success) or -1. */
int jq_client_enqueue_ctl(jq_client_t *c, const char *type, const char *payload, size_t len,
                          const jq_enqueue_opts_t *o, unsigned flags, jq_enqueue_ctl_t *ctl,
                          char *id_out, size_t id_cap, char *err, size_t errlen);

/* ---- batches (docs/PROTOCOL.md §13) ---- */

typedef struct jq_batch_opts {
    const char *queue;               /* NULL: "default". The batch's keys and
                                        its callbacks live there; its jobs may
                                        be in any queue. At most 100 bytes */
    const char *on_complete_type;    /* NULL: none. Enqueued once every job
                                        ended (done, dead or cancelled) */
    const char *on_complete_payload; /* JSON text, or NULL (null) */
    const char *on_success_type;     /* NULL: none. Enqueued only when every
                                        job is done (none dead or cancelled) */
    const char *on_success_payload;  /* JSON text, or NULL (null) */
} jq_batch_opts_t;

typedef struct jq_batch {
    char id[JQ_CLIENT_ID_LEN];
    char queue[JQ_CLIENT_ID_LEN];
    long long total, pending, done, dead, cancelled;
    int sealed;
    long long created_at; /* ms since the epoch */
    long long fired_at;   /* when its callbacks were enqueued; 0: not yet */
} jq_batch_t;

/* Creates an empty, open batch; writes its id ("<queue>:<16 hex>") into
 * id_out (id_cap >= JQ_CLIENT_ID_LEN). Jobs join it with
 * jq_client_enqueue_ctl (ctl->batch) until jq_client_batch_seal. Returns
 * 0 or -1. */
int jq_client_batch_create(jq_client_t *c, const jq_batch_opts_t *o, char *id_out, size_t id_cap,
                           char *err, size_t errlen);

/* Seals batch id: no job may join it any more. If its jobs have all
 * ended already, its callbacks are enqueued now (once, whoever gets there
 * first). *b (may be NULL) gets its figures after. Returns 0,
 * JQ_CLIENT_ENOTFOUND, or -1. */
int jq_client_batch_seal(jq_client_t *c, const char *id, jq_batch_t *b, char *err, size_t errlen);

/* Reads batch id's figures into *b. Returns 0, JQ_CLIENT_ENOTFOUND (never
 * created, or expired a day after its callbacks), or -1. */
int jq_client_batch_show(jq_client_t *c, const char *id, jq_batch_t *b, char *err, size_t errlen);

/* Writes 16 random lowercase hex chars and a NUL into out (cap >= 17).
 * Returns 0, or -1 if the system has no randomness to give. */
int jq_client_gen_id(char *out, size_t cap);

/* ---- results and waiting (PROTOCOL §3) ---- */

typedef struct jq_result {
    char state[16]; /* "done", "dead", "cancelled", "retrying",
                              "running" (reporting progress); "" if
                              unknown */
    int has_hash;   /* 0: no result hash (result_ttl 0, or not yet) */
    char *result;   /* msgpack bytes (chunks reassembled), or NULL
                              for nil; owned, freed by jq_result_destroy */
    size_t result_len;
    char *error;           /* owned, NULL when absent */
    char *worker;          /* owned, NULL when absent */
    long long attempts;    /* -1 when absent */
    long long finished_at; /* ms since the epoch, -1 when absent */
} jq_result_t;

/* Reads the result hash of job `id` now, without waiting, into *r (which
 * the caller releases with jq_result_destroy() whatever this returns). The
 * result bytes are read only when the state is done. Returns 0,
 * JQ_CLIENT_ENOTFOUND when there is no result hash, or -1. */
int jq_client_result(jq_client_t *c, const char *queue, const char *id, jq_result_t *r, char *err,
                     size_t errlen);

/* Waits up to timeout_ms for job `id` to be done, dead or cancelled, for any job
 * however it was enqueued: polls its result hash, first after 5 ms, then
 * twice as long each time up to half a second, never past the timeout
 * (PROTOCOL 1.2: a job enqueued without `notify 1` gets no notify list to
 * block on). Returns 0 with *r filled (state "done" or "dead"),
 * JQ_CLIENT_ETIMEOUT with the last state seen in *r ("" or "retrying"),
 * or -1. The caller releases *r with jq_result_destroy() whatever this
 * returns. Same as jq_client_wait_flags() with flags 0. */
int jq_client_wait(jq_client_t *c, const char *queue, const char *id, long long timeout_ms,
                   jq_result_t *r, char *err, size_t errlen);

/* jq_client_wait() for a job enqueued with JQ_NOTIFY: looks at the result
 * hash first (the job may have finished, or another waiter may have taken
 * the notify element), then BLPOPs <p>:{<q>}:notify:<id> in slices of at
 * most one second, looking again between slices. Pushes nothing back.
 * Without JQ_NOTIFY in flags it polls as jq_client_wait() does. */
int jq_client_wait_flags(jq_client_t *c, const char *queue, const char *id, long long timeout_ms,
                         unsigned flags, jq_result_t *r, char *err, size_t errlen);

/* Frees what *r owns and zeroes it. Safe on a zeroed or destroyed r. */
void jq_result_destroy(jq_result_t *r);

/* Where a job is now (docs/PROTOCOL.md: the stream §1 and §6, the
 * scheduled set §2, the result hash §3, the dead set §4). */
typedef enum jq_where {
    JQ_WHERE_UNKNOWN = 0, /* in none of the places below */
    JQ_WHERE_READY,       /* in the stream, not yet delivered to a worker */
    JQ_WHERE_RUNNING,     /* delivered to a worker, not yet acknowledged */
    JQ_WHERE_SCHEDULED,   /* delayed, or waiting for its next attempt */
    JQ_WHERE_FINISHED,    /* its result hash says so (state done or dead) */
    JQ_WHERE_DEAD,        /* in the dead set, without a result hash */
} jq_where_t;

typedef struct jq_job_place {
    jq_where_t where;
    char state[16];    /* the result hash's state, "" when it has none */
    char entry_id[48]; /* the stream entry, when in the stream */
    long long at_ms;   /* scheduled: when due; dead: when it died; else 0 */
} jq_job_place_t;

/* Finds job `id` of `queue` (NULL: the default) in one atomic look at the
 * queue's keys. A job id chosen by its producer (not an entry id) can
 * only be found in the stream by reading it: the first 100,000 entries are
 * looked through, and a job beyond them reads as READY. Returns 0 with
 * *out filled (where is UNKNOWN when the job is nowhere), or -1. */
int jq_client_locate(jq_client_t *c, const char *queue, const char *id, jq_job_place_t *out,
                     char *err, size_t errlen);

/* How long ago a worker serving `queue` last showed itself (its
 * heartbeat in <p>:{<q>}:types, docs/PROTOCOL.md §7), in ms into *ms_ago;
 * -1 when none ever did (or not within the last three heartbeats, after
 * which workers forget it). Returns 0 or -1. */
int jq_client_served(jq_client_t *c, const char *queue, long long *ms_ago, char *err,
                     size_t errlen);

/* The name of a place: "ready", "running", "scheduled", "finished",
 * "dead" or "unknown". */
const char *jq_where_name(jq_where_t w);

/* ---- dead jobs (PROTOCOL §4) ---- */

typedef struct jq_field {
    char *name;  /* NUL-terminated */
    char *value; /* value_len bytes plus a NUL (values may be binary) */
    size_t value_len;
} jq_field_t;

/* A job of the dead set (§4) or of the scheduled set (§2): the two are
 * the same shape, a sorted set of ids beside one hash per job. */
typedef struct jq_dead_job {
    char id[JQ_CLIENT_ID_LEN];
    union {                /* the score in its set, ms since the epoch */
        long long died_at; /* dead set: when it died */
        long long due_at;  /* scheduled set: when it is due (0: at once) */
    };
    const char *type;   /* borrowed from fields; NULL when absent */
    const char *error;  /* borrowed from fields; NULL when absent */
    long long attempts; /* the `attempt` field; -1 when absent */
    jq_field_t *fields; /* every field of <p>:{<q>}:job:<id>, owned */
    size_t nfields;     /* 0 if the job hash is gone */
} jq_dead_job_t;

/* Lists dead jobs of `queue` with every field of their hashes, oldest
 * first, from position `start`, at most `count` (0: all): the set list of
 * the dead set. Returns 0 or -1. */
int jq_client_dead_list(jq_client_t *c, const char *queue, long long start, long long count,
                        jq_dead_job_t **jobs, size_t *n, char *err, size_t errlen);
void jq_dead_jobs_free(jq_dead_job_t *jobs, size_t n);

/* Which sorted set of a queue jq_client_set_list reads. DONE: the index
 * of a queue's last done jobs (jq_client_keep_done), each with its result
 * hash instead of a job hash (brief: state, error, attempts). */
typedef enum { JQ_SET_DEAD, JQ_SET_SCHEDULED, JQ_SET_DONE } jq_set_t;

typedef struct jq_set_page {
    jq_set_t set;
    long long start;  /* position of the first job, from 0 */
    long long count;  /* at most this many; 0: all from start */
    int newest_first; /* highest score first (latest death, latest due) */
    int brief;        /* read only the fields type, error and attempt of
                         each hash, not its payload: for listings */
} jq_set_page_t;

/* Lists one page of the dead or scheduled set of `queue`, by score, with
 * each job's hash (see brief), in two round trips whatever the page size.
 * *total (may be NULL) gets the size of the whole set. *jobs is an owned
 * array of *n jobs, released with jq_dead_jobs_free(); NULL when *n is 0.
 * A job whose hash is gone has nfields 0. Returns 0 or -1. */
int jq_client_set_list(jq_client_t *c, const char *queue, const jq_set_page_t *page,
                       jq_dead_job_t **jobs, size_t *n, long long *total, char *err, size_t errlen);

/* Lists one page of the jobs in the streams of `queue`: the ready ones
 * (not yet delivered: after the group's last delivered entry) or, with
 * running, the delivered ones not yet acknowledged (the group's pending
 * list), through its priority levels high, normal, low (PROTOCOL.md §15),
 * oldest first within a level, starting after the cursor `after` (NULL:
 * from the start), at most count (0: 100; at most 10,000). Each job's
 * fields are its entry's (brief: without the payload) plus `entry_id`,
 * `priority` (high, normal or low: the stream it is in) and, when
 * running, `consumer`, `idle_ms` and `deliveries`; died_at holds the
 * entry's time. Page on with the last job's cursor: its entry_id when its
 * priority is normal, else "<priority>:<entry_id>". *jobs as
 * jq_client_set_list. Returns 0 or -1. */
int jq_client_stream_list(jq_client_t *c, const char *queue, int running, const char *after,
                          long long count, int brief, jq_dead_job_t **jobs, size_t *n, char *err,
                          size_t errlen);

/* One job wherever it is (jq_client_locate): *at says where, *job holds
 * the fields of that place: its stream entry (ready, running), its job
 * hash (scheduled, dead, and a finished job whose result says dead while
 * it is in the dead set) or its result hash (finished); died_at holds the
 * entry's time for a job in the stream, the death time for a dead one.
 * Release *job with jq_dead_job_destroy() whatever this returns. Returns
 * 0, JQ_CLIENT_ENOTFOUND when the job is nowhere, or -1. */
int jq_client_job_show(jq_client_t *c, const char *queue, const char *id, jq_job_place_t *at,
                       jq_dead_job_t *job, char *err, size_t errlen);

/* Keeps an index of the last `keep` done jobs of `queue` (1 to 1,000,000;
 * 0: none, and the index is dropped): the setting keep_done of
 * <p>:{<q>}:settings, which workers read once a second. Costs two writes
 * per done job of that queue only. Returns 0 or -1. */
int jq_client_keep_done(jq_client_t *c, const char *queue, long long keep, char *err,
                        size_t errlen);

/* Reads one dead job into *job (release with jq_dead_job_destroy()).
 * Returns 0, JQ_CLIENT_ENOTFOUND when id is not in the dead set, or -1. */
int jq_client_dead_show(jq_client_t *c, const char *queue, const char *id, jq_dead_job_t *job,
                        char *err, size_t errlen);
void jq_dead_job_destroy(jq_dead_job_t *job);

/* Finds a field of a dead job's hash; NULL when absent. Borrowed. */
const jq_field_t *jq_dead_job_field(const jq_dead_job_t *job, const char *name);

/* Reads the payload of a job read with jq_client_dead_show() or a full
 * jq_client_set_list(): the `payload` field, or for a chunked job (PROTOCOL
 * §1 `chunks`) its list <p>:{<q>}:payload:<id>, read whole only when its
 * size is at most `max`, else only its first chunk. *buf (owned, free())
 * gets *len bytes, NULL when the job has no payload; *total the payload's
 * full size. Returns 0 or -1. */
int jq_client_job_payload(jq_client_t *c, const char *queue, const jq_dead_job_t *job, size_t max,
                          char **buf, size_t *len, size_t *total, char *err, size_t errlen);

/* Schedules a dead job to run again at once with the MULTI of PROTOCOL §4
 * (under WATCH of the dead set). Just before it, deletes the job's result
 * hash, result chunks and notify list, so that a waiter sees the new run's
 * outcome, not the old one. Returns 0, JQ_CLIENT_ENOTFOUND when id is not
 * in the dead set, or -1. */
int jq_client_dead_retry(jq_client_t *c, const char *queue, const char *id, char *err,
                         size_t errlen);

/* Deletes a dead job: its hash, its dead-set entry and its payload chunks,
 * in one MULTI. Returns 0, JQ_CLIENT_ENOTFOUND, or -1. */
int jq_client_dead_delete(jq_client_t *c, const char *queue, const char *id, char *err,
                          size_t errlen);

/* Retry / delete every job of the dead set as it is at the call; jobs that
 * vanish meanwhile are skipped. *done (may be NULL) gets the count handled.
 * Returns 0 or -1 (after *done jobs). */
int jq_client_dead_retry_all(jq_client_t *c, const char *queue, size_t *done, char *err,
                             size_t errlen);
int jq_client_dead_delete_all(jq_client_t *c, const char *queue, size_t *done, char *err,
                              size_t errlen);

/* ---- cancellation (docs/PROTOCOL.md §11) ---- */

/* Cancels job `id` of `queue`: a scheduled job (delayed, or waiting for
 * its retry) is removed at once; a ready or running one gets a request in
 * <p>:{<q>}:cancel, which the workers act on (a ready job never starts, a
 * running one stops; its result then says `cancelled`). Writes into
 * state[0..cap) (cap >= 24) what happened: "cancelled", "requested",
 * "pending" (asked before), or "ended:<state>" when the job had already
 * ended (done, dead or cancelled). Returns 0, JQ_CLIENT_ENOTFOUND when no
 * job has that id, or -1. */
int jq_client_cancel(jq_client_t *c, const char *queue, const char *id, char *state, size_t cap,
                     char *err, size_t errlen);

/* ---- pause (PROTOCOL §5) and figures (§7) ---- */

/* SET / DEL <p>:{<q>}:paused. Returns 0 or -1. */
int jq_client_pause(jq_client_t *c, const char *queue, char *err, size_t errlen);
int jq_client_resume(jq_client_t *c, const char *queue, char *err, size_t errlen);

typedef struct jq_queue_stats {
    char queue[JQ_CLIENT_ID_LEN];
    long long length;    /* XLEN of the stream */
    long long ready;     /* the group's lag; where nil, length minus pending */
    long long running;   /* the group's pending count */
    long long scheduled; /* ZCARD scheduled */
    long long dead;      /* ZCARD dead */
    int paused;
    /* The totals hash <p>:{<q>}:stats; 0 when absent. */
    long long processed, failed, retried, dead_total;
} jq_queue_stats_t;

/* Reads the figures of one queue in one round trip. Returns 0 or -1. */
int jq_client_stats(jq_client_t *c, const char *queue, jq_queue_stats_t *s, char *err,
                    size_t errlen);

/* Reads the per-minute counters (§7, <p>:{<q>}:stats:<minute>) of the n
 * minutes up to and including the one holding now_ms, oldest first, into
 * processed[0..n) and failed[0..n) (0 where a minute has none), in one
 * round trip. n is 1 to 1440. Returns 0 or -1. */
int jq_client_minutes(jq_client_t *c, const char *queue, long long now_ms, int n,
                      long long *processed, long long *failed, char *err, size_t errlen);

/* The members of <p>:queues, sorted: an owned array of *n owned strings,
 * released with jq_client_queues_free(). Returns 0 or -1. */
int jq_client_queues(jq_client_t *c, char ***names, size_t *n, char *err, size_t errlen);
void jq_client_queues_free(char **names, size_t n);

/* ---- schedules (docs/PROTOCOL.md §13) ---- */

/* A schedule: a job enqueued at each tick, exactly once per tick however
 * many consumers run. Ticks are every every_ms (at whole multiples of it
 * since the epoch), or the times cron names in zone tz. */
typedef struct jq_schedule {
    const char *queue;  /* NULL: "default" */
    const char *name;   /* 1 to 64 bytes of [A-Za-z0-9_.-] */
    long long every_ms; /* > 0: an interval (at least 100 ms); else cron */
    const char *cron;   /* "MIN HOUR DOM MON DOW" when every_ms is 0 */
    const char *tz;     /* cron's time zone ("Europe/Berlin"); NULL: UTC */
} jq_schedule_t;

/* Adds schedule s, or replaces the one of that name (its next tick is
 * computed anew, its pause and last tick are dropped), whose job is of
 * handler `type` with payload[0..len) and o's fields as
 * jq_client_enqueue_flags() would write them (o->id, delay_ms, at_ms and
 * chunk_size are not used: each job's id is "<name>:<tick>", and the
 * payload goes inline). Writes the first tick (ms since the epoch) into
 * *first_ms if not NULL. Returns 0 or -1 with err (a bad cron expression,
 * an unknown zone, a bad name). */
int jq_client_schedule_add(jq_client_t *c, const jq_schedule_t *s, const char *type,
                           const char *payload, size_t len, const jq_enqueue_opts_t *o,
                           long long *first_ms, char *err, size_t errlen);

/* Removes a schedule. Returns 1 when it existed, 0 when not, -1 on error. */
int jq_client_schedule_rm(jq_client_t *c, const char *queue, const char *name, char *err,
                          size_t errlen);

/* Pauses (pause 1: its ticks pass without a job) or resumes a schedule.
 * Returns 1 when it exists, 0 when not, -1 on error. */
int jq_client_schedule_pause(jq_client_t *c, const char *queue, const char *name, int pause,
                             char *err, size_t errlen);

/* One schedule as jq_client_schedule_list() reads it; strings are owned. */
typedef struct jq_schedule_info {
    char *queue, *name;
    long long every_ms; /* 0 for a cron schedule */
    char *cron, *tz;    /* NULL when absent */
    char *type;         /* the job's type; NULL if its template is missing */
    int paused;
    long long next_ms;      /* the next tick; 0: not computed yet */
    long long last_tick_ms; /* the last tick that enqueued a job; 0: none */
    long long last_fired_ms;
    char *last_job; /* that job's id, NULL when none */
    char *error;    /* why a consumer could not use it, NULL when fine */
} jq_schedule_info_t;

/* The schedules of queue (NULL: "default"), by name, into an owned array
 * released with jq_schedule_infos_free(). Returns 0 or -1. */
int jq_client_schedule_list(jq_client_t *c, const char *queue, jq_schedule_info_t **out, size_t *n,
                            char *err, size_t errlen);
void jq_schedule_infos_free(jq_schedule_info_t *v, size_t n);

#endif
