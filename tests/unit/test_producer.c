/* libjobq against a throwaway redis-server (one per test, on a free port,
 * stopped by its pid): what each call writes, checked key by key with
 * plain commands, and what it reads back from keys written by hand the way
 * a consumer would. Over 500 lines: one test per libjobq call and
 * failure, as jobq.h lists them. */

#include "client_int.h"
#include "job.h"
#include "jobq/jobq.h"
#include "jobq/watch.h"
#include "redis_fixture.h"
#include "view.h"

TestSuite(producer, .init = start_redis, .fini = stop_redis);

/* The value of field `name` in a flat field/value array, or NULL. */
static const redisReply *field(const redisReply *fv, const char *name) {
    for (size_t i = 0; i + 1 < fv->elements; i += 2)
        if (!strcmp(fv->element[i]->str, name)) return fv->element[i + 1];
    return NULL;
}

Test(producer, gen_id_is_16_hex_and_random) {
    char a[17], b[17];
    cr_assert_eq(jq_client_gen_id(a, sizeof(a)), 0);
    cr_assert_eq(jq_client_gen_id(b, sizeof(b)), 0);
    cr_assert_eq(strlen(a), 16);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 16);
    cr_assert_str_neq(a, b);
    cr_assert_eq(jq_client_gen_id(a, 16), -1);
}

Test(producer, new_reports_bad_input_and_refusal) {
    cr_assert_null(jq_client_new("redis://127.0.0.1:1", NULL, err, sizeof(err)));
    cr_assert(strstr(err, "cannot connect"), "%s", err);
    cr_assert_null(jq_client_new("http://x", NULL, err, sizeof(err)));
    cr_assert_null(jq_client_new(redis_url, "a b", err, sizeof(err)));
    cr_assert(strstr(err, "prefix"), "%s", err);
}

Test(producer, enqueue_inline_is_one_xadd) {
    char id[JQ_CLIENT_ID_LEN];
    const char pl[] = "\x81\xa1k\x01"; /* {"k": 1} */
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.max_attempts = 2;
    o.result_ttl = 0;
    cr_assert_eq(jq_client_enqueue(cl, "echo", pl, 4, &o, id, sizeof(id), err, sizeof(err)), 0,
                 "%s", err);
    redisReply *x = cmd("XRANGE t:{default}:stream - +");
    cr_assert_eq(x->elements, 1);
    cr_assert_str_eq(x->element[0]->element[0]->str, id);
    const redisReply *fv = x->element[0]->element[1];
    cr_assert_str_eq(field(fv, "type")->str, "echo");
    cr_assert_eq(field(fv, "payload")->len, 4);
    cr_assert_eq(memcmp(field(fv, "payload")->str, pl, 4), 0);
    cr_assert_str_eq(field(fv, "max_attempts")->str, "2");
    cr_assert_str_eq(field(fv, "result_ttl")->str, "0");
    cr_assert_null(field(fv, "id"));
    cr_assert_null(field(fv, "timeout_ms"));
    cr_assert_null(field(fv, "notify"), "nobody said it waits");
    freeReplyObject(x);
    cr_assert_eq(cmd_int("SISMEMBER t:queues %s", "default"), 1);
}

/* PROTOCOL 1.2 §3: a caller that waits asks for the notify list, in the
 * entry or, for a delayed job, in its hash. */
Test(producer, enqueue_with_notify_carries_the_field) {
    char id[JQ_CLIENT_ID_LEN];
    cr_assert_eq(jq_client_enqueue_flags(cl, "noop", NULL, 0, NULL, JQ_NOTIFY, id, sizeof(id), err,
                                         sizeof(err)),
                 0, "%s", err);
    redisReply *x = cmd("XRANGE t:{default}:stream - +");
    cr_assert_eq(x->elements, 1);
    cr_assert_str_eq(field(x->element[0]->element[1], "notify")->str, "1");
    freeReplyObject(x);
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.delay_ms = 60000;
    cr_assert_eq(jq_client_enqueue_flags(cl, "noop", NULL, 0, &o, JQ_NOTIFY, id, sizeof(id), err,
                                         sizeof(err)),
                 0, "%s", err);
    redisReply *h = cmd("HGETALL t:{default}:job:%s", id);
    cr_assert_str_eq(field(h, "notify")->str, "1");
    freeReplyObject(h);
}

Test(producer, enqueue_rejects_what_a_consumer_would) {
    char id[JQ_CLIENT_ID_LEN];
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    /* JQ_CLIENT_EINVAL, not -1: the CLI maps it to exit 2 (bad input), a
     * connection error to 3; the caller must be able to tell them apart. */
    cr_assert_eq(jq_client_enqueue(cl, "echo", "\x92\x01", 2, &o, id, sizeof(id), err, sizeof(err)),
                 JQ_CLIENT_EINVAL);
    cr_assert_eq(jq_client_enqueue(cl, "", NULL, 0, &o, id, sizeof(id), err, sizeof(err)),
                 JQ_CLIENT_EINVAL);
    o.queue = "no spaces";
    cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, &o, id, sizeof(id), err, sizeof(err)),
                 JQ_CLIENT_EINVAL);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:stream"), 0);
}

Test(producer, enqueue_chunked_writes_list_then_entry) {
    char payload[1003], id[JQ_CLIENT_ID_LEN];
    payload[0] = (char)0xc5; /* bin 16 of 1000 bytes */
    payload[1] = 0x03;
    payload[2] = (char)0xe8;
    for (int i = 3; i < 1003; i++) payload[i] = (char)i;
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.chunk_size = 300;
    o.queue = "big";
    cr_assert_eq(jq_client_enqueue(cl, "echo", payload, sizeof(payload), &o, id, sizeof(id), err,
                                   sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(strlen(id), 16);
    redisReply *l = cmd("LRANGE t:{big}:payload:%s 0 -1", id);
    cr_assert_eq(l->elements, 4);
    size_t off = 0;
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(memcmp(l->element[i]->str, payload + off, l->element[i]->len), 0);
        off += l->element[i]->len;
    }
    cr_assert_eq(off, sizeof(payload));
    freeReplyObject(l);
    redisReply *x = cmd("XRANGE t:{big}:stream - +");
    const redisReply *fv = x->element[0]->element[1];
    cr_assert_str_eq(field(fv, "chunks")->str, "4");
    cr_assert_str_eq(field(fv, "size")->str, "1003");
    cr_assert_str_eq(field(fv, "id")->str, id);
    cr_assert_null(field(fv, "payload"));
    freeReplyObject(x);
}

Test(producer, enqueue_delayed_writes_hash_and_schedule) {
    char id[JQ_CLIENT_ID_LEN];
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.at_ms = 4102444800000LL;
    o.id = "later-1";
    cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, &o, id, sizeof(id), err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_str_eq(id, "later-1");
    cr_assert_eq(cmd_int("ZSCORE t:{default}:scheduled %s", "later-1"), 4102444800000LL);
    redisReply *h = cmd("HGETALL t:{default}:job:later-1");
    cr_assert_str_eq(field(h, "type")->str, "noop");
    cr_assert_str_eq(field(h, "id")->str, "later-1");
    cr_assert_null(field(h, "payload"));
    freeReplyObject(h);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:stream"), 0);

    jq_enqueue_opts_init(&o);
    o.delay_ms = 60000;
    long long now = jq_now_ms();
    cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, &o, id, sizeof(id), err, sizeof(err)), 0);
    long long due = cmd_int("ZSCORE t:{default}:scheduled %s", id);
    cr_assert(due >= now + 60000 && due < now + 61000);
}

Test(producer, result_and_wait) {
    jq_result_t r;
    cr_assert_eq(jq_client_result(cl, NULL, "j1", &r, err, sizeof(err)), JQ_CLIENT_ENOTFOUND);
    jq_result_destroy(&r);
    freeReplyObject(
        cmd("HSET t:{default}:result:j1 state done result %b attempts 2 worker w:1 finished_at 77",
            "\xa2hi", (size_t)3));
    cr_assert_eq(jq_client_wait(cl, NULL, "j1", 1000, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(r.state, "done");
    cr_assert_eq(r.result_len, 3);
    cr_assert_eq(memcmp(r.result, "\xa2hi", 3), 0);
    cr_assert_eq(r.attempts, 2);
    cr_assert_eq(r.finished_at, 77);
    cr_assert_str_eq(r.worker, "w:1");
    cr_assert_null(r.error);
    jq_result_destroy(&r);

    /* Retrying is not an end: the wait times out and reports it. */
    freeReplyObject(cmd("HSET t:{default}:result:j2 state retrying error boom attempts 1"));
    long long t0 = jq_now_ms();
    cr_assert_eq(jq_client_wait(cl, NULL, "j2", 200, &r, err, sizeof(err)), JQ_CLIENT_ETIMEOUT);
    cr_assert(jq_now_ms() - t0 < 1000);
    cr_assert_str_eq(r.state, "retrying");
    cr_assert_str_eq(r.error, "boom");
    jq_result_destroy(&r);

    /* A wake-up with no hash: waiting with JQ_NOTIFY pops it, and the
     * popped state is all there is. Without JQ_NOTIFY the wait polls the
     * hash only (PROTOCOL 1.2: most jobs push no wake-up), and leaves the
     * list alone. */
    freeReplyObject(cmd("LPUSH t:{default}:notify:j3 dead"));
    cr_assert_eq(jq_client_wait(cl, NULL, "j3", 100, &r, err, sizeof(err)), JQ_CLIENT_ETIMEOUT);
    jq_result_destroy(&r);
    cr_assert_eq(cmd_int("LLEN %s", "t:{default}:notify:j3"), 1);
    cr_assert_eq(jq_client_wait_flags(cl, NULL, "j3", 1000, JQ_NOTIFY, &r, err, sizeof(err)), 0);
    cr_assert_str_eq(r.state, "dead");
    cr_assert_eq(r.has_hash, 0);
    jq_result_destroy(&r);
}

/* More chunks than two LRANGEs of 16 (the read keeps one in flight), of
 * sizes that differ: the buffer sized at the first chunk must grow. */
Test(producer, wait_reassembles_many_chunks_of_any_size) {
    char want[40 * 41 / 2 + 40];
    size_t at = 0;
    for (int i = 0; i < 40; i++) {
        char piece[64];
        size_t n = (size_t)(i % 7) * 3 + 1;
        for (size_t k = 0; k < n; k++) piece[k] = (char)('a' + (i + (int)k) % 26);
        memcpy(want + at, piece, n);
        at += n;
        freeReplyObject(cmd("RPUSH t:{q}:result:m1:chunks %b", piece, n));
    }
    freeReplyObject(cmd("HSET t:{q}:result:m1 state done chunks 40"));
    jq_result_t r;
    cr_assert_eq(jq_client_wait(cl, "q", "m1", 1000, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.result_len, at);
    cr_assert_eq(memcmp(r.result, want, at), 0);
    jq_result_destroy(&r);
    /* One chunk short at the end: an error, not a short result. */
    freeReplyObject(cmd("HSET t:{q}:result:m1 chunks 41"));
    cr_assert_eq(jq_client_wait(cl, "q", "m1", 1000, &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "incomplete"), "%s", err);
    jq_result_destroy(&r);
}

Test(producer, wait_reassembles_chunked_result) {
    freeReplyObject(
        cmd("RPUSH t:{q}:result:c1:chunks %b %b", "\xa5", (size_t)1, "hello", (size_t)5));
    freeReplyObject(cmd("HSET t:{q}:result:c1 state done chunks 2"));
    jq_result_t r;
    cr_assert_eq(jq_client_wait(cl, "q", "c1", 1000, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(r.result_len, 6);
    cr_assert_eq(memcmp(r.result, "\xa5hello", 6), 0);
    jq_result_destroy(&r);
    freeReplyObject(cmd("HSET t:{q}:result:c2 state done chunks 3"));
    cr_assert_eq(jq_client_wait(cl, "q", "c2", 1000, &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "incomplete"), "%s", err);
    jq_result_destroy(&r);
}

static void make_dead(const char *id, long long at) {
    char score[32];
    snprintf(score, sizeof(score), "%lld", at);
    freeReplyObject(cmd("HSET t:{default}:job:%s type fail error oops attempt 3", id));
    freeReplyObject(cmd("ZADD t:{default}:dead %s %s", score, id));
}

Test(producer, dead_list_show_retry_delete) {
    make_dead("d1", 1000);
    make_dead("d2", 2000);
    freeReplyObject(cmd("RPUSH t:{default}:payload:d2 a b"));
    jq_dead_job_t *jobs;
    size_t n;
    cr_assert_eq(jq_client_dead_list(cl, NULL, 0, 0, &jobs, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(jobs[0].id, "d1");
    cr_assert_eq(jobs[0].died_at, 1000);
    cr_assert_str_eq(jobs[0].type, "fail");
    cr_assert_str_eq(jobs[0].error, "oops");
    cr_assert_eq(jobs[0].attempts, 3);
    jq_dead_jobs_free(jobs, n);

    jq_dead_job_t job;
    cr_assert_eq(jq_client_dead_show(cl, NULL, "d2", &job, err, sizeof(err)), 0);
    cr_assert_str_eq(jq_dead_job_field(&job, "type")->value, "fail");
    jq_dead_job_destroy(&job);
    cr_assert_eq(jq_client_dead_show(cl, NULL, "zz", &job, err, sizeof(err)), JQ_CLIENT_ENOTFOUND);

    freeReplyObject(cmd("HSET t:{default}:result:d1 state dead"));
    cr_assert_eq(jq_client_dead_retry(cl, NULL, "d1", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cmd_int("ZSCORE t:{default}:scheduled %s", "d1"), 0);
    cr_assert_eq(cmd_int("ZSCORE t:{default}:dead %s", "d1"), -1); /* nil */
    cr_assert_eq(cmd_int("HGET t:{default}:job:d1 %s", "attempt"), 0);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:result:d1"), 0);
    cr_assert_eq(jq_client_dead_retry(cl, NULL, "d1", err, sizeof(err)), JQ_CLIENT_ENOTFOUND);

    cr_assert_eq(jq_client_dead_delete(cl, NULL, "d2", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:job:d2"), 0);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:payload:d2"), 0);
    cr_assert_eq(cmd_int("ZCARD %s", "t:{default}:dead"), 0);
}

Test(producer, set_list_pages_both_sets_newest_first_brief) {
    for (int i = 1; i <= 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        make_dead(id, 1000 * i);
    }
    freeReplyObject(cmd("HSET t:{default}:job:d3 payload %b",
                        "\xa3"
                        "big",
                        (size_t)4));
    jq_set_page_t pg = {JQ_SET_DEAD, 1, 2, 1, 1};
    jq_dead_job_t *jobs;
    size_t n;
    long long total;
    cr_assert_eq(jq_client_set_list(cl, NULL, &pg, &jobs, &n, &total, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(total, 5);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(jobs[0].id, "d4"); /* newest first, skipping d5 */
    cr_assert_str_eq(jobs[1].id, "d3");
    cr_assert_eq(jobs[1].died_at, 3000);
    cr_assert_str_eq(jobs[1].type, "fail");
    cr_assert_str_eq(jobs[1].error, "oops");
    cr_assert_eq(jobs[1].attempts, 3);
    cr_assert_null(jq_dead_job_field(&jobs[1], "payload"), "brief reads no payload");
    jq_dead_jobs_free(jobs, n);

    /* Scheduled: due times as scores, a job without a hash still listed. */
    freeReplyObject(cmd("HSET t:{default}:job:s1 type sleep attempt 1"));
    freeReplyObject(cmd("ZADD t:{default}:scheduled 5000 s1 0 s0"));
    jq_set_page_t sp = {JQ_SET_SCHEDULED, 0, 0, 0, 0};
    cr_assert_eq(jq_client_set_list(cl, NULL, &sp, &jobs, &n, &total, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(total, 2);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(jobs[0].id, "s0");
    cr_assert_eq(jobs[0].due_at, 0);
    cr_assert_eq(jobs[0].nfields, 0);
    cr_assert_str_eq(jobs[1].id, "s1");
    cr_assert_eq(jobs[1].due_at, 5000);
    cr_assert_str_eq(jobs[1].type, "sleep");
    jq_dead_jobs_free(jobs, n);

    /* Past the end: nothing, and the total still told. */
    jq_set_page_t past = {JQ_SET_DEAD, 10, 5, 0, 0};
    cr_assert_eq(jq_client_set_list(cl, NULL, &past, &jobs, &n, &total, err, sizeof(err)), 0);
    cr_assert_eq(n, 0);
    cr_assert_null(jobs);
    cr_assert_eq(total, 5);
    cr_assert_eq(jq_client_set_list(cl, "bad name", &past, &jobs, &n, &total, err, sizeof(err)),
                 -1);
    cr_assert(strstr(err, "queue name"), "%s", err);
}

Test(producer, job_payload_inline_chunked_and_head) {
    jq_dead_job_t job;
    char *buf;
    size_t len, total;
    make_dead("p1", 1);
    freeReplyObject(cmd("HSET t:{default}:job:p1 payload %b", "\xa2hi", (size_t)3));
    cr_assert_eq(jq_client_dead_show(cl, NULL, "p1", &job, err, sizeof(err)), 0);
    cr_assert_eq(jq_client_job_payload(cl, NULL, &job, 100, &buf, &len, &total, err, sizeof(err)),
                 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(total, 3);
    cr_assert_eq(memcmp(buf, "\xa2hi", 3), 0);
    free(buf);
    jq_dead_job_destroy(&job);

    make_dead("p2", 2);
    freeReplyObject(cmd("HSET t:{default}:job:p2 chunks 2 size 6"));
    freeReplyObject(
        cmd("RPUSH t:{default}:payload:p2 %b %b", "\xa5he", (size_t)3, "llo", (size_t)3));
    cr_assert_eq(jq_client_dead_show(cl, NULL, "p2", &job, err, sizeof(err)), 0);
    cr_assert_eq(jq_client_job_payload(cl, NULL, &job, 100, &buf, &len, &total, err, sizeof(err)),
                 0);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(buf, "\xa5hello", 6), 0);
    free(buf);
    /* Larger than max: the first chunk only, the full size told. */
    cr_assert_eq(jq_client_job_payload(cl, NULL, &job, 4, &buf, &len, &total, err, sizeof(err)), 0);
    cr_assert_eq(len, 3);
    cr_assert_eq(total, 6);
    free(buf);
    jq_dead_job_destroy(&job);

    make_dead("p3", 3); /* no payload: nil */
    cr_assert_eq(jq_client_dead_show(cl, NULL, "p3", &job, err, sizeof(err)), 0);
    cr_assert_eq(jq_client_job_payload(cl, NULL, &job, 100, &buf, &len, &total, err, sizeof(err)),
                 0);
    cr_assert_null(buf);
    cr_assert_eq(total, 0);
    jq_dead_job_destroy(&job);
}

Test(producer, minutes_reads_per_minute_counters_oldest_first) {
    long long now = 600000 * 1000LL + 1234; /* minute 10000 */
    freeReplyObject(cmd("HSET t:{default}:stats:10000 processed 7 failed 2"));
    freeReplyObject(cmd("HSET t:{default}:stats:9998 processed 3"));
    freeReplyObject(cmd("HSET t:{default}:stats:9996 processed 99")); /* outside */
    long long p[3], f[3];
    cr_assert_eq(jq_client_minutes(cl, NULL, now, 3, p, f, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p[0], 3);
    cr_assert_eq(p[1], 0);
    cr_assert_eq(p[2], 7);
    cr_assert_eq(f[0], 0);
    cr_assert_eq(f[2], 2);
    cr_assert_eq(jq_client_minutes(cl, NULL, now, 0, p, f, err, sizeof(err)), -1);
}

Test(producer, dead_all) {
    make_dead("a", 1);
    make_dead("b", 2);
    make_dead("c", 3);
    size_t done;
    cr_assert_eq(jq_client_dead_retry_all(cl, NULL, &done, err, sizeof(err)), 0);
    cr_assert_eq(done, 3);
    cr_assert_eq(cmd_int("ZCARD %s", "t:{default}:scheduled"), 3);
    make_dead("d", 4);
    make_dead("e", 5);
    cr_assert_eq(jq_client_dead_delete_all(cl, NULL, &done, err, sizeof(err)), 0);
    cr_assert_eq(done, 2);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:job:e"), 0);
}

Test(producer, pause_stats_queues) {
    char id[JQ_CLIENT_ID_LEN];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, NULL, id, sizeof(id), err, sizeof(err)),
                     0);
    jq_queue_stats_t s;
    cr_assert_eq(jq_client_stats(cl, NULL, &s, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(s.ready, 3);
    cr_assert_eq(s.running, 0);
    freeReplyObject(cmd("XGROUP CREATE t:{default}:stream workers 0"));
    freeReplyObject(cmd("XREADGROUP GROUP workers w COUNT 1 STREAMS t:{default}:stream >"));
    freeReplyObject(cmd("HSET t:{default}:stats processed 9 dead 2"));
    make_dead("x", 1);
    cr_assert_eq(jq_client_pause(cl, NULL, err, sizeof(err)), 0);
    cr_assert_eq(jq_client_stats(cl, "default", &s, err, sizeof(err)), 0);
    cr_assert_eq(s.length, 3);
    cr_assert_eq(s.ready, 2);
    cr_assert_eq(s.running, 1);
    cr_assert_eq(s.dead, 1);
    cr_assert_eq(s.paused, 1);
    cr_assert_eq(s.processed, 9);
    cr_assert_eq(s.dead_total, 2);
    cr_assert_eq(jq_client_resume(cl, NULL, err, sizeof(err)), 0);
    cr_assert_eq(cmd_int("EXISTS %s", "t:{default}:paused"), 0);

    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.queue = "alpha";
    cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, &o, id, sizeof(id), err, sizeof(err)), 0);
    char **names;
    size_t n;
    cr_assert_eq(jq_client_queues(cl, &names, &n, err, sizeof(err)), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "alpha");
    cr_assert_str_eq(names[1], "default");
    jq_client_queues_free(names, n);
}

Test(producer, reconnects_after_the_connection_breaks) {
    /* Another connection kills every normal client but itself. */
    redisContext *killer = redisConnect("127.0.0.1", redis_port);
    cr_assert(killer && !killer->err);
    freeReplyObject(redisCommand(killer, "CLIENT KILL TYPE normal"));
    redisFree(killer);
    char id[JQ_CLIENT_ID_LEN];
    /* The first call may see the broken link; the next one reconnects. */
    if (jq_client_enqueue(cl, "noop", NULL, 0, NULL, id, sizeof(id), err, sizeof(err)) < 0)
        cr_assert_eq(jq_client_enqueue(cl, "noop", NULL, 0, NULL, id, sizeof(id), err, sizeof(err)),
                     0, "%s", err);
    cr_assert_eq(cmd_int("XLEN %s", "t:{default}:stream"), 1);
}

/* One ECHO, run alone on the client's connection: its reply's text. */
static void assert_echo(const char *word) {
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "ECHO");
    jq_args_str(&a, word);
    redisReply *r = jq_client_run(cl, &a, err, sizeof(err));
    jq_args_destroy(&a);
    cr_assert(r, "%s", err);
    cr_assert_str_eq(r->str, word);
    freeReplyObject(r);
}

Test(producer, a_half_sent_pipeline_never_answers_the_next_call) {
    jq_pipe_t p;
    jq_pipe_init(&p, cl);
    jq_args_str(&p.a, "ECHO");
    jq_args_str(&p.a, "stale");
    cr_assert_eq(jq_pipe_send(&p, err, sizeof(err)), 0, "%s", err);
    p.a.oom = 1; /* a command that could not be built */
    cr_assert_eq(jq_pipe_send(&p, err, sizeof(err)), -1);
    cr_assert(strstr(err, "out of memory"), "%s", err);
    /* Broken: nothing more is sent or read, and the first words stay. */
    jq_args_str(&p.a, "ECHO");
    jq_args_str(&p.a, "later");
    cr_assert_eq(jq_pipe_send(&p, err, sizeof(err)), -1);
    cr_assert_null(jq_pipe_reply(&p, err, sizeof(err)));
    cr_assert(strstr(err, "out of memory"), "%s", err);
    cr_assert_eq(jq_pipe_end(&p), -1);
    /* The next call reconnects rather than read "stale". */
    assert_echo("fresh");
}

Test(producer, a_pipeline_left_half_read_never_answers_the_next_call) {
    jq_pipe_t p;
    jq_pipe_init(&p, cl);
    for (int i = 0; i < 3; i++) {
        jq_args_str(&p.a, "ECHO");
        jq_args_ll(&p.a, i);
        cr_assert_eq(jq_pipe_send(&p, err, sizeof(err)), 0, "%s", err);
    }
    redisReply *r = jq_pipe_reply(&p, err, sizeof(err));
    cr_assert(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "0"));
    freeReplyObject(r);
    cr_assert_eq(jq_pipe_end(&p), 0); /* not broken: the caller gave up */
    assert_echo("fresh");
}

Test(producer, a_pipeline_read_to_the_end_keeps_its_connection) {
    redisContext *before = jq_client_context(cl);
    jq_pipe_t p;
    jq_pipe_init(&p, cl);
    jq_args_str(&p.a, "PING");
    jq_pipe_send(&p, err, sizeof(err));
    jq_args_str(&p.a, "NOSUCHCOMMAND");
    jq_pipe_send(&p, err, sizeof(err));
    redisReply *r;
    while ((r = jq_pipe_reply(&p, err, sizeof(err)))) freeReplyObject(r);
    cr_assert(strstr(err, "no command left"), "%s", err);
    cr_assert_eq(jq_pipe_end(&p), -1); /* read past its end: a bug, reported */
    assert_echo("same");
    cr_assert_eq(jq_client_context(cl), before);
}

Test(producer, a_queue_with_a_bad_key_leaves_the_snapshot_in_step) {
    /* Queue a's totals hash is a string: its HGETALL answers WRONGTYPE,
     * and the snapshot fails; the replies of queue b and of the worker
     * set are still read, so the connection stays usable as it is. */
    freeReplyObject(cmd("SADD t:queues a b"));
    freeReplyObject(cmd("SET t:{a}:stats oops"));
    jq_watch_t w;
    cr_assert_eq(jq_watch_read(cl, NULL, &w, err, sizeof(err)), -1);
    cr_assert(strstr(err, "WRONGTYPE"), "%s", err);
    jq_watch_destroy(&w);
    cr_assert_eq(jq_client_context(cl)->err, 0, "marked broken: replies were left unread");
    assert_echo("in step");
}

/* PROTOCOL §10, §12 through the library: a unique job's duplicate adds
 * nothing and names the holder; a delayed one too; a job of a batch
 * counts in it, a duplicate is taken back out, a sealed batch takes none;
 * a batch whose jobs all ended fires at its seal. */
Test(producer, enqueue_ctl_unique_and_batch) {
    char id[JQ_CLIENT_ID_LEN], id2[JQ_CLIENT_ID_LEN], bid[JQ_CLIENT_ID_LEN];
    jq_batch_opts_t bo = {"cb", "noop", "{\"k\":1}", NULL, NULL};
    cr_assert_eq(jq_client_batch_create(cl, &bo, bid, sizeof(bid), err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(strncmp(bid, "cb:", 3), 0, "%s", bid);
    jq_enqueue_ctl_t ctl = {"k1", 0, bid, 0};
    cr_assert_eq(
        jq_client_enqueue_ctl(cl, "noop", NULL, 0, NULL, 0, &ctl, id, sizeof(id), err, sizeof(err)),
        0, "%s", err);
    cr_assert_eq(ctl.duplicate, 0);
    cr_assert_eq(jq_client_enqueue_ctl(cl, "noop", NULL, 0, NULL, 0, &ctl, id2, sizeof(id2), err,
                                       sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(ctl.duplicate, 1);
    cr_assert_str_eq(id2, id);
    redisReply *x = cmd("GET t:{default}:unique:k1");
    cr_assert_str_eq(x->str, id);
    freeReplyObject(x);
    x = cmd("XLEN t:{default}:stream");
    cr_assert_eq(x->integer, 1);
    freeReplyObject(x);
    jq_batch_t b;
    cr_assert_eq(jq_client_batch_show(cl, bid, &b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(b.total, 1, "the duplicate was taken back out");
    cr_assert_eq(b.pending, 1);
    /* A delayed unique job: in scheduled, holding its key. */
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    o.delay_ms = 60000;
    jq_enqueue_ctl_t later = {"k2", 5000, NULL, 0};
    cr_assert_eq(jq_client_enqueue_ctl(cl, "noop", NULL, 0, &o, 0, &later, id2, sizeof(id2), err,
                                       sizeof(err)),
                 0, "%s", err);
    x = cmd("ZCARD t:{default}:scheduled");
    cr_assert_eq(x->integer, 1);
    freeReplyObject(x);
    x = cmd("HGET t:{default}:job:%s unique_until", id2);
    cr_assert_eq(x->type, REDIS_REPLY_STRING);
    freeReplyObject(x);
    /* The job ends as a worker would say; the seal fires once. */
    char member[256];
    snprintf(member, sizeof(member), "default/%s", id);
    const char *name = bid + 3;
    x = cmd("HINCRBY t:{cb}:batch:%s done 1", name);
    freeReplyObject(x);
    x = cmd("SADD t:{cb}:batch:%s:ended %s", name, member);
    freeReplyObject(x);
    cr_assert_eq(jq_client_batch_seal(cl, bid, &b, err, sizeof(err)), 0, "%s", err);
    cr_assert(b.sealed && b.fired_at > 0 && b.done == 1 && b.pending == 0);
    x = cmd("XLEN t:{cb}:stream");
    cr_assert_eq(x->integer, 1);
    freeReplyObject(x);
    ctl.unique = NULL;
    cr_assert_eq(jq_client_enqueue_ctl(cl, "noop", NULL, 0, NULL, 0, &ctl, id2, sizeof(id2), err,
                                       sizeof(err)),
                 -1);
    cr_assert(strstr(err, "sealed"), "%s", err);
    cr_assert_eq(jq_client_batch_show(cl, "cb:nope", &b, err, sizeof(err)), JQ_CLIENT_ENOTFOUND);
    cr_assert_eq(jq_client_batch_seal(cl, "cb:nope", NULL, err, sizeof(err)), JQ_CLIENT_ENOTFOUND);
}
