/* A producer in C with libjobq, built against the installed library:
 *
 *     cc -o enqueue enqueue.c $(pkg-config --cflags --libs jobq msgpack)
 *
 * Enqueues one job, waits for it and prints its result (a string as it is,
 * anything else as msgpack-c prints it; nil as "null").
 *
 *     JOBQ_REDIS_URL=redis://127.0.0.1:6379 ./enqueue sha256 '{"data":"hello","rounds":3}'
 *
 * Exit status: 0 done, 1 dead (the error on stderr), 2 bad usage or no
 * result within 30 s, 3 Redis trouble. Environment: JOBQ_REDIS_URL,
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

/* Prints msgpack bytes: a string as plain text, nil as null, anything
 * else in msgpack-c's notation. */
static void print_result(const char *bytes, size_t len) {
    if (!bytes) {
        puts("null");
        return;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, bytes, len, NULL) != MSGPACK_UNPACK_SUCCESS) {
        puts("(result is not msgpack)");
    } else if (u.data.type == MSGPACK_OBJECT_STR) {
        printf("%.*s\n", (int)u.data.via.str.size, u.data.via.str.ptr);
    } else {
        msgpack_object_print(stdout, u.data);
        putchar('\n');
    }
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
    if (jq_client_enqueue_flags(c, argv[1], payload, payload ? strlen(payload) : 0, &o, JQ_NOTIFY,
                                id, sizeof(id), err, sizeof(err)) != 0) {
        fprintf(stderr, "enqueue: %s\n", err);
        jq_client_free(c);
        return 3;
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
