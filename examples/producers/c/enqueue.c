/* A producer in C with libjobq, built against the installed library:
 *
 *     cc -o enqueue enqueue.c $(pkg-config --cflags --libs jobq msgpack)
 *
 * Enqueues one job, waits for it and prints its result as one line of JSON
 * (nil as null), as every example producer does.
 *
 *     JOBQ_REDIS_URL=redis://127.0.0.1:6379 ./enqueue sha256 '{"data":"hello","rounds":3}'
 *
 * Exit status: 0 done, 1 dead (the error on stderr), 2 bad usage, a
 * payload that is not JSON, or no result within 30 s, 3 Redis trouble. Environment: JOBQ_REDIS_URL,
 * JOBQ_PREFIX, JOBQ_QUEUE. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jobq/jobq.h>
#include <msgpack.h>

#define WAIT_MS 30000

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Prints s[0..n) as a JSON string: " \ and control characters escaped,
 * other bytes (UTF-8) as they are. */
static void json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* One msgpack object as JSON (a bin as a string of its bytes, a map key
 * that is not a string as the JSON of it, quoted). */
static void json_object(msgpack_object o) {
    switch (o.type) {
        case MSGPACK_OBJECT_NIL: fputs("null", stdout); break;
        case MSGPACK_OBJECT_BOOLEAN: fputs(o.via.boolean ? "true" : "false", stdout); break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: printf("%llu", (unsigned long long)o.via.u64); break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: printf("%lld", (long long)o.via.i64); break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: printf("%.17g", o.via.f64); break;
        case MSGPACK_OBJECT_STR: json_string(o.via.str.ptr, o.via.str.size); break;
        case MSGPACK_OBJECT_BIN: json_string(o.via.bin.ptr, o.via.bin.size); break;
        case MSGPACK_OBJECT_ARRAY:
            putchar('[');
            for (uint32_t i = 0; i < o.via.array.size; i++) {
                if (i) putchar(',');
                json_object(o.via.array.ptr[i]);
            }
            putchar(']');
            break;
        case MSGPACK_OBJECT_MAP:
            putchar('{');
            for (uint32_t i = 0; i < o.via.map.size; i++) {
                msgpack_object k = o.via.map.ptr[i].key;
                if (i) putchar(',');
                if (k.type == MSGPACK_OBJECT_STR) {
                    json_string(k.via.str.ptr, k.via.str.size);
                } else {
                    putchar('"');
                    json_object(k); /* a number key, say */
                    putchar('"');
                }
                putchar(':');
                json_object(o.via.map.ptr[i].val);
            }
            putchar('}');
            break;
        default: fputs("null", stdout); /* ext: not JSON */
    }
}

/* Prints the result as one line of JSON, as every example does; nil (no
 * result) as null. */
static void print_result(const char *bytes, size_t len) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (!bytes)
        fputs("null", stdout);
    else if (msgpack_unpack_next(&u, bytes, len, NULL) != MSGPACK_UNPACK_SUCCESS)
        json_string(bytes, len); /* not msgpack: its bytes */
    else
        json_object(u.data);
    putchar('\n');
    msgpack_unpacked_destroy(&u);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s TYPE [PAYLOAD_JSON]\n", argv[0]);
        return 2;
    }
    const char *payload = argc == 3 ? argv[2] : NULL;
    char err[256];
    jq_client_t *c = jq_client_new(env_or("JOBQ_REDIS_URL", "redis://127.0.0.1:6379"),
                                   env_or("JOBQ_PREFIX", "jobq"), err, sizeof(err));
    if (!c) {
        fprintf(stderr, "enqueue: %s\n", err);
        return 3;
    }

    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.queue = env_or("JOBQ_QUEUE", "default");
    o.enc_json = 1; /* the payload goes as JSON text, field enc json */
    char id[JQ_CLIENT_ID_LEN];
    /* JQ_NOTIFY: the entry carries `notify 1` (PROTOCOL 1.2 §3), so the
     * wait below blocks on the job's notify list instead of polling. */
    int sent = jq_client_enqueue_flags(c, argv[1], payload, payload ? strlen(payload) : 0, &o,
                                       JQ_NOTIFY, id, sizeof(id), err, sizeof(err));
    if (sent != 0) {
        fprintf(stderr, "enqueue: %s\n", err);
        jq_client_free(c);
        return sent == JQ_CLIENT_EINVAL ? 2 : 3; /* a bad payload is 2, as in every example */
    }

    jq_result_t r;
    int rc = jq_client_wait_flags(c, o.queue, id, WAIT_MS, JQ_NOTIFY, &r, err, sizeof(err));
    int status;
    if (rc == JQ_CLIENT_ETIMEOUT) {
        fprintf(stderr, "enqueue: job %s did not finish in %d ms\n", id, WAIT_MS);
        status = 2;
    } else if (rc != 0) {
        fprintf(stderr, "enqueue: %s\n", err);
        status = 3;
    } else if (strcmp(r.state, "done") == 0) {
        print_result(r.result, r.result_len);
        status = 0;
    } else {
        fprintf(stderr, "enqueue: job %s is %s: %s\n", id, r.state, r.error ? r.error : "");
        status = 1;
    }
    jq_result_destroy(&r);
    jq_client_free(c);
    return status;
}
