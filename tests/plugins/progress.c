/* A cpu handler that reports its progress (handler ABI 4): `steps` takes
 * {steps: N, ms: M}, sleeps M ms N times on its pool thread, and after
 * each step reports (i + 1) / N with "step i+1 of N". It stops when its
 * job is cancelled (jq_task_yield says so). Its result is N. */

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <jobq/handler.h>

JQ_PLUGIN_DECLARE_ABI;

static long long get(const msgpack_object *m, const char *name, long long dflt) {
    if (m->type != MSGPACK_OBJECT_MAP) return dflt;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(name) &&
            memcmp(kv->key.via.str.ptr, name, kv->key.via.str.size) == 0 &&
            kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            return (long long)kv->val.via.u64;
    }
    return dflt;
}

static int steps_run(jq_task_t *t) {
    long long n = get(t->payload, "steps", 10), ms = get(t->payload, "ms", 100);
    for (long long i = 0; i < n; i++) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (jq_task_yield(t) == JQ_TASK_CANCELLED) return jq_task_fail(t, "steps: cancelled");
        char msg[64];
        snprintf(msg, sizeof msg, "step %lld of %lld", i + 1, n);
        jq_task_progress(t, (double)(i + 1) / (double)n, msg);
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    msgpack_pack_int64(&pk, n);
    return 0;
}

static const jq_handler_t steps = {.name = "steps", .kind = JQ_KIND_CPU, .run = steps_run};

int jobq_plugin_register(jq_plugin_host_t *host) { return jq_plugin_add(host, &steps); }
