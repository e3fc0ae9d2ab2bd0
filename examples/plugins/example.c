/* An example jobq plugin: one io handler and one cpu handler.
 *
 *   make plugins
 *   bin/jobq-consumer --plugin bin/plugins/example.so
 *   bin/jobq enqueue hello '{"name":"Ada","ms":100}' --wait
 *   bin/jobq enqueue wordcount '"the quick brown fox"' --wait
 *
 * hello (io): waits payload.ms milliseconds on the worker's loop (a
 * uv_timer, never blocking it), then returns {greeting: "hello, <name>",
 * job, queue, attempt}.
 * wordcount (cpu): counts the words, lines and bytes of a str or bin
 * payload on a pool thread and returns {words, lines, bytes}. */

#include <stdlib.h>
#include <string.h>
#include <jobq/handler.h>

JQ_PLUGIN_DECLARE_ABI;

/* Finds key in a msgpack map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
    if (m->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

/* ---- hello: io ---- */

/* The timer lives in heap state, not in the task: after a cancel the task is
 * gone but the timer is closed later, in a callback. */
typedef struct hello {
    uv_timer_t timer;
    jq_task_t *t; /* NULL once cancelled */
    char name[64];
} hello_t;

static void hello_on_close(uv_handle_t *h) { free(h->data); }

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void hello_on_timer(uv_timer_t *timer) {
    hello_t *st = timer->data;
    jq_task_t *t = st->t;
    msgpack_packer pk;
    char msg[96];

    /* The task says which job and attempt it is: handy for idempotency
     * keys and logs. */
    snprintf(msg, sizeof msg, "hello, %s", st->name);
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "greeting");
    pack_str(&pk, msg);
    pack_str(&pk, "job");
    pack_str(&pk, t->job_id);
    pack_str(&pk, "queue");
    pack_str(&pk, t->queue);
    pack_str(&pk, "attempt");
    msgpack_pack_long_long(&pk, t->attempt);
    t->hstate = NULL;
    uv_close((uv_handle_t *)&st->timer, hello_on_close);
    jq_task_done(t); /* last: the worker may free t here */
}

static int hello_start(jq_task_t *t) {
    const msgpack_object *name = map_get(t->payload, "name");
    const msgpack_object *ms = map_get(t->payload, "ms");
    if (name == NULL || name->type != MSGPACK_OBJECT_STR)
        return jq_task_fail_permanent(t, "hello: payload must be {name: str, ms: N}");
    if (ms != NULL && ms->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return jq_task_fail_permanent(t, "hello: ms must be an integer >= 0");

    hello_t *st = calloc(1, sizeof *st);
    if (st == NULL) return jq_task_fail(t, "hello: out of memory");
    int rc = uv_timer_init(t->loop, &st->timer);
    if (rc != 0) {
        free(st);
        return jq_task_fail(t, "hello: %s", uv_strerror(rc));
    }
    snprintf(st->name, sizeof st->name, "%.*s", (int)name->via.str.size, name->via.str.ptr);
    st->timer.data = st;
    st->t = t;
    t->hstate = st;
    uv_timer_start(&st->timer, hello_on_timer, ms ? ms->via.u64 : 0, 0);
    return 0;
}

static void hello_cancel(jq_task_t *t) {
    hello_t *st = t->hstate;
    t->hstate = NULL;
    st->t = NULL;
    uv_close((uv_handle_t *)&st->timer, hello_on_close);
}

/* ---- wordcount: cpu ---- */

static int wordcount_run(jq_task_t *t) {
    const msgpack_object *p = t->payload;
    const char *s;
    size_t len;
    if (p->type == MSGPACK_OBJECT_STR) {
        s = p->via.str.ptr;
        len = p->via.str.size;
    } else if (p->type == MSGPACK_OBJECT_BIN) {
        s = p->via.bin.ptr;
        len = p->via.bin.size;
    } else {
        return jq_task_fail_permanent(t, "wordcount: payload must be a str or bin");
    }
    uint64_t words = 0, lines = 0;
    int in_word = 0;
    for (size_t i = 0; i < len; i++) {
        /* A long payload takes a while: let waiting threads have the core
         * now and then (a cheap call; see jobq/handler.h). */
        if ((i & 4095) == 0) jq_task_yield(t);
        int space = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
        if (s[i] == '\n') lines++;
        if (!space && !in_word) words++;
        in_word = !space;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "words", 5);
    msgpack_pack_uint64(&pk, words);
    msgpack_pack_str_with_body(&pk, "lines", 5);
    msgpack_pack_uint64(&pk, lines);
    msgpack_pack_str_with_body(&pk, "bytes", 5);
    msgpack_pack_uint64(&pk, len);
    return 0;
}

static const jq_handler_t hello = {
    .name = "hello", .kind = JQ_KIND_IO, .start = hello_start, .cancel = hello_cancel};
static const jq_handler_t wordcount = {
    .name = "wordcount", .kind = JQ_KIND_CPU, .run = wordcount_run};

int jobq_plugin_register(jq_plugin_host_t *host) {
    if (jq_plugin_add(host, &hello) != 0 || jq_plugin_add(host, &wordcount) != 0) return -1;
    return 0;
}
