/* The built-in job types of PROTOCOL §8. Each is a static handler; the
 * payload is always a borrowed msgpack object (nil when the job has none)
 * and results are appended to t->result as msgpack. */

#include "builtins.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "codec.h"
#include "cryptosym.h"

/* --- noop, echo: io work that is finished before start() returns, so they
 * call jq_task_done() from inside start (jobq/handler.h allows it); a timer just
 * to defer the call would cost a loop iteration per job. */

static int noop_start(jq_task_t *t) {
    jq_task_done(t);
    return 0;
}

/* echo: the result is the payload, written from the payload's own bytes
 * (jq_task_result_payload): no copy of it in memory, however large. */
static int echo_start(jq_task_t *t) {
    jq_task_result_payload(t);
    jq_task_done(t);
    return 0;
}

/* --- sleep: a timer in heap state, because on cancel the timer must outlive
 * the task until its close callback has run. */

typedef struct sleep_state {
    uv_timer_t timer;
    jq_task_t *t; /* NULL once cancelled or fired */
} sleep_state_t;

static void sleep_on_close(uv_handle_t *h) { free(h->data); }

static void sleep_on_timer(uv_timer_t *timer) {
    sleep_state_t *st = timer->data;
    jq_task_t *t = st->t;
    st->t = NULL;
    t->hstate = NULL;
    uv_close((uv_handle_t *)&st->timer, sleep_on_close);
    /* Last: done_cb may free t. */
    jq_task_done(t);
}

static int sleep_start(jq_task_t *t) {
    const msgpack_object *ms = jq_codec_map_get(t->payload, "ms");
    if (ms == NULL || ms->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return jq_task_fail_permanent(t, "sleep: payload must be a map {ms: N}");

    sleep_state_t *st = malloc(sizeof *st);
    if (st == NULL) return jq_task_fail(t, "sleep: out of memory");
    int rc = uv_timer_init(t->loop, &st->timer);
    if (rc != 0) {
        free(st);
        return jq_task_fail(t, "sleep: uv_timer_init: %s", uv_strerror(rc));
    }
    st->timer.data = st;
    /* The loop's clock is cached per turn; a busy turn would let the job
     * wake up to that turn's length early, short of the ms it asked for. */
    uv_update_time(t->loop);
    rc = uv_timer_start(&st->timer, sleep_on_timer, ms->via.u64, 0);
    if (rc != 0) {
        uv_close((uv_handle_t *)&st->timer, sleep_on_close);
        return jq_task_fail(t, "sleep: uv_timer_start: %s", uv_strerror(rc));
    }
    st->t = t;
    t->hstate = st;
    return 0;
}

static void sleep_cancel(jq_task_t *t) {
    sleep_state_t *st = t->hstate;
    if (st == NULL) return;
    t->hstate = NULL;
    st->t = NULL;
    /* uv_close stops the timer; the state is freed in the close callback,
     * which never sees the task. */
    uv_close((uv_handle_t *)&st->timer, sleep_on_close);
}

/* --- sha256: cpu work on a pool thread. */

/* libcrypto is loaded (cryptosym.h) and the algorithm fetched at the first
 * sha256 job, by whichever pool thread runs it, and both kept for the life
 * of the process; a worker that never hashes never maps libcrypto. If it
 * cannot be loaded, every sha256 job fails with the reason and the worker
 * runs its other jobs on. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static char sha256_err[256];
static void sha256_load(void) {
    if (jq_crypto_load(sha256_err, sizeof sha256_err) != 0) return;
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) snprintf(sha256_err, sizeof sha256_err, "libcrypto has no SHA256");
}

/* The bytes to hash and the number of rounds, from t's payload. Returns
 * 0, or -1 after jq_task_fail_permanent: a malformed payload stays so. */
static int sha256_args(jq_task_t *t, const void **in, size_t *inlen, uint64_t *n) {
    const msgpack_object *data = jq_codec_map_get(t->payload, "data");
    const msgpack_object *rounds = jq_codec_map_get(t->payload, "rounds");
    if (data != NULL && data->type == MSGPACK_OBJECT_STR) {
        *in = data->via.str.ptr;
        *inlen = data->via.str.size;
    } else if (data != NULL && data->type == MSGPACK_OBJECT_BIN) {
        *in = data->via.bin.ptr;
        *inlen = data->via.bin.size;
    } else {
        return jq_task_fail_permanent(
            t, "sha256: payload must be a map {data: str or bin, rounds: N}");
    }
    /* An absent rounds means one: the common case of hashing once. */
    *n = 1;
    if (rounds != NULL) {
        if (rounds->type != MSGPACK_OBJECT_POSITIVE_INTEGER || rounds->via.u64 < 1)
            return jq_task_fail_permanent(t, "sha256: rounds must be an integer >= 1");
        *n = rounds->via.u64;
    }
    return 0;
}

/* Hashes in[0..inlen), then the digest n - 1 more times, into md[32].
 * Returns 0, or -1 after jq_task_fail.
 *
 * One context reused for every round, and the algorithm fetched once per
 * process: OpenSSL 3 looks EVP_sha256() up again on every
 * EVP_DigestInit_ex, under a lock that all pool threads share. Measured
 * here: 2M rounds took 0.52 s on one thread and 0.88 s on each of two; with
 * the fetched digest 0.19 s either way. */
static int sha256_rounds(jq_task_t *t, const void *in, size_t inlen, uint64_t n,
                         unsigned char md[EVP_MAX_MD_SIZE]) {
    unsigned int mdlen = 0;
    pthread_once(&sha256_once, sha256_load);
    const EVP_MD *alg = sha256_md;
    if (alg == NULL) return jq_task_fail(t, "sha256: %s", sha256_err);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) return jq_task_fail(t, "sha256: out of memory");
    int ok = EVP_DigestInit_ex(ctx, alg, NULL) && EVP_DigestUpdate(ctx, in, inlen) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (uint64_t i = 1; ok && i < n; i++) {
        if (jq_task_yield(t) == JQ_TASK_CANCELLED) {
            /* The job is cancelled: its outcome says so, not this. */
            EVP_MD_CTX_free(ctx);
            return jq_task_fail(t, "sha256: cancelled");
        }
        ok = EVP_DigestInit_ex(ctx, alg, NULL) && EVP_DigestUpdate(ctx, md, mdlen) &&
             EVP_DigestFinal_ex(ctx, md, &mdlen);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen != 32) return jq_task_fail(t, "sha256: libcrypto digest failed");
    return 0;
}

static int sha256_run(jq_task_t *t) {
    const void *in = NULL;
    size_t inlen = 0;
    uint64_t n = 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    if (sha256_args(t, &in, &inlen, &n) != 0 || sha256_rounds(t, in, inlen, n, md) != 0) return -1;
    static const char hexd[] = "0123456789abcdef";
    char hex[64];
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = hexd[md[i] >> 4];
        hex[2 * i + 1] = hexd[md[i] & 15];
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    if (msgpack_pack_str(&pk, sizeof hex) != 0 || msgpack_pack_str_body(&pk, hex, sizeof hex) != 0)
        return jq_task_fail(t, "sha256: out of memory");
    return 0;
}

/* --- fail, crash: for tests and demonstrations of the failure paths. */

static int fail_start(jq_task_t *t) {
    const msgpack_object *m = jq_codec_map_get(t->payload, "message");
    if (m == NULL || m->type != MSGPACK_OBJECT_STR) return jq_task_fail(t, "fail: no message");
    return jq_task_fail(t, "%.*s", (int)m->via.str.size, m->via.str.ptr);
}

static int crash_run(jq_task_t *t) {
    (void)t;
    abort();
}

/* --- fsstat: io work that goes through libuv's shared threadpool (each
 * uv_fs_stat is a threadpool request), for the pool-starvation benchmark of
 * bench/seed/ (`--cpu-mode uv` puts cpu jobs on that same threadpool). Only
 * with --test-handlers: it stats any path the job names. Payload {path: str,
 * n: N}: N stats of path, one after another; result nil. */

#define FSSTAT_PATH_MAX 4096
#define FSSTAT_N_MAX 100000

typedef struct fsstat_state {
    uv_fs_t req;
    jq_task_t *t; /* NULL once cancelled: the request in flight frees us */
    uint64_t left;
    char path[];
} fsstat_state_t;

static void fsstat_on_stat(uv_fs_t *req) {
    fsstat_state_t *st = req->data;
    jq_task_t *t = st->t;
    ssize_t rc = req->result;
    uv_fs_req_cleanup(req);
    if (t == NULL) {
        free(st);
        return;
    }
    if (rc >= 0 && --st->left > 0) {
        int qrc = uv_fs_stat(t->loop, &st->req, st->path, fsstat_on_stat);
        if (qrc == 0) return;
        rc = qrc;
    }
    if (rc < 0) jq_task_fail(t, "fsstat: %s: %s", st->path, uv_strerror((int)rc));
    t->hstate = NULL;
    free(st);
    jq_task_done(t); /* last: done_cb may free t */
}

static int fsstat_start(jq_task_t *t) {
    const msgpack_object *path = jq_codec_map_get(t->payload, "path");
    const msgpack_object *n = jq_codec_map_get(t->payload, "n");
    if (path == NULL || path->type != MSGPACK_OBJECT_STR || path->via.str.size == 0 ||
        path->via.str.size > FSSTAT_PATH_MAX || memchr(path->via.str.ptr, 0, path->via.str.size) ||
        n == NULL || n->type != MSGPACK_OBJECT_POSITIVE_INTEGER || n->via.u64 < 1 ||
        n->via.u64 > FSSTAT_N_MAX)
        return jq_task_fail_permanent(t, "fsstat: payload must be a map {path: str, n: 1..%d}",
                                      FSSTAT_N_MAX);

    fsstat_state_t *st = malloc(sizeof *st + path->via.str.size + 1);
    if (st == NULL) return jq_task_fail(t, "fsstat: out of memory");
    memcpy(st->path, path->via.str.ptr, path->via.str.size);
    st->path[path->via.str.size] = '\0';
    st->t = t;
    st->left = n->via.u64;
    st->req.data = st;
    int rc = uv_fs_stat(t->loop, &st->req, st->path, fsstat_on_stat);
    if (rc != 0) {
        free(st);
        return jq_task_fail(t, "fsstat: uv_fs_stat: %s", uv_strerror(rc));
    }
    t->hstate = st;
    return 0;
}

static void fsstat_cancel(jq_task_t *t) {
    fsstat_state_t *st = t->hstate;
    if (st == NULL) return;
    t->hstate = NULL;
    st->t = NULL; /* its request, still in flight, frees it */
}

static const jq_handler_t noop_handler = {.name = "noop", .kind = JQ_KIND_IO, .start = noop_start};
static const jq_handler_t echo_handler = {.name = "echo", .kind = JQ_KIND_IO, .start = echo_start};
static const jq_handler_t sleep_handler = {
    .name = "sleep", .kind = JQ_KIND_IO, .start = sleep_start, .cancel = sleep_cancel};
static const jq_handler_t sha256_handler = {
    .name = "sha256", .kind = JQ_KIND_CPU, .run = sha256_run};
static const jq_handler_t fail_handler = {.name = "fail", .kind = JQ_KIND_IO, .start = fail_start};
static const jq_handler_t crash_handler = {.name = "crash", .kind = JQ_KIND_CPU, .run = crash_run};
static const jq_handler_t fsstat_handler = {
    .name = "fsstat", .kind = JQ_KIND_IO, .start = fsstat_start, .cancel = fsstat_cancel};

int jq_builtins_register(jq_registry_t *r, int test_handlers, char *err, size_t errlen) {
    static const jq_handler_t *const all[] = {
        &noop_handler, &echo_handler, &sleep_handler, &sha256_handler, &fail_handler,
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (jq_registry_add(r, all[i], err, errlen) != 0) return -1;
    /* crash kills the whole worker, fsstat stats any path: never reachable
     * in production. */
    if (test_handlers && (jq_registry_add(r, &crash_handler, err, errlen) != 0 ||
                          jq_registry_add(r, &fsstat_handler, err, errlen) != 0))
        return -1;
    return 0;
}
