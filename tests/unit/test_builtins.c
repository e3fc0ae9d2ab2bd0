/* Tests of the built-in job types (consumer/handlers/builtins.c, PROTOCOL §8). sha256
 * is checked against independent implementations (coreutils sha256sum and
 * Python's hashlib), never against our own code. Over 500 lines: every
 * built-in type has its good and its malformed payloads here, one test
 * each, as PROTOCOL §8 lists them. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "codec.h"

static jq_registry_t reg;
static uv_loop_t loop;
static msgpack_sbuffer payload_buf;
static msgpack_unpacked payload;
static jq_task_t task;
static int done_calls;
static uint64_t done_at_ns;

static void on_done(jq_task_t *t) {
    cr_assert_eq(t, &task);
    done_calls++;
    done_at_ns = uv_hrtime();
}

static void setup(void) {
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&reg);
    cr_assert_eq(jq_builtins_register(&reg, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(uv_loop_init(&loop), 0);
    msgpack_sbuffer_init(&payload_buf);
    msgpack_unpacked_init(&payload);
    memset(&task, 0, sizeof task);
    msgpack_sbuffer_init(&task.result);
    task.loop = &loop;
    task.done_cb = on_done;
    done_calls = 0;
}

static void teardown(void) {
    msgpack_sbuffer_destroy(&task.result);
    msgpack_unpacked_destroy(&payload);
    msgpack_sbuffer_destroy(&payload_buf);
    /* Every handle a handler opened must be closed by now. */
    cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(builtins, .init = setup, .fini = teardown);

/* Points task.payload at the object packed into payload_buf so far. */
static void set_payload(void) {
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&payload, payload_buf.data, payload_buf.size, &off),
                 MSGPACK_UNPACK_SUCCESS);
    task.payload = &payload.data;
}

static msgpack_packer *packer(void) {
    static msgpack_packer pk;
    msgpack_packer_init(&pk, &payload_buf, msgpack_sbuffer_write);
    return &pk;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static const jq_handler_t *handler(const char *name) {
    const jq_handler_t *h = jq_registry_find(&reg, name, strlen(name));
    cr_assert_not_null(h, "%s not registered", name);
    return h;
}

/* --- noop, echo */

Test(builtins, noop_is_nil_and_done_inside_start) {
    msgpack_pack_int(packer(), 7);
    set_payload();
    cr_assert_eq(handler("noop")->start(&task), 0);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(task.result.size, 0, "noop left a result");
    cr_assert_eq(task.failed, 0);
}

/* echo hands the worker its payload as the result (ABI 6), not a copy:
 * the bytes themselves are the worker's to write (test_chunks.py checks
 * them end to end, a non-canonical encoding kept byte for byte). */
Test(builtins, echo_returns_its_payload_without_copying_it) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "b");
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "\0\1\2", 3);
    set_payload();

    cr_assert_eq(handler("echo")->start(&task), 0);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(task.failed, 0);
    cr_assert_eq(task.result_is_payload, 1);
    cr_assert_eq(task.result.size, 0, "echo copied its payload");
}

/* --- fail */

Test(builtins, fail_with_message) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "message");
    pack_cstr(pk, "boom: disk on fire");
    set_payload();
    cr_assert_eq(handler("fail")->start(&task), -1);
    cr_assert_eq(task.failed, 1);
    cr_assert_str_eq(task.error, "boom: disk on fire");
    cr_assert_eq(done_calls, 0, "a failed start called jq_task_done");
}

Test(builtins, fail_without_message) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "msg");
    pack_cstr(pk, "x");
    set_payload();
    cr_assert_eq(handler("fail")->start(&task), -1);
    cr_assert_str_eq(task.error, "fail: no message");
    cr_assert_eq(done_calls, 0);
}

Test(builtins, fail_with_nil_payload) {
    msgpack_pack_nil(packer());
    set_payload();
    cr_assert_eq(handler("fail")->start(&task), -1);
    cr_assert_str_eq(task.error, "fail: no message");
}

/* --- sha256 */

/* Packs {data: <len bytes of data as str or bin>, rounds: n}; rounds <= 0
 * packs that (bad) integer, and no_rounds leaves the key out. */
static void sha_payload(const char *data, size_t len, int bin, long long n, int no_rounds) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, no_rounds ? 1 : 2);
    pack_cstr(pk, "data");
    if (bin) {
        msgpack_pack_bin(pk, len);
        msgpack_pack_bin_body(pk, data, len);
    } else {
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, data, len);
    }
    if (!no_rounds) {
        pack_cstr(pk, "rounds");
        msgpack_pack_long_long(pk, n);
    }
    set_payload();
}

/* Runs sha256 and returns its result: a msgpack str of 64 lowercase hex. */
static void sha_result(char out[65]) {
    cr_assert_eq(handler("sha256")->run(&task), 0, "%s", task.error);
    cr_assert_eq(task.failed, 0);
    msgpack_unpacked r;
    msgpack_unpacked_init(&r);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&r, task.result.data, task.result.size, &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, task.result.size);
    cr_assert_eq(r.data.type, MSGPACK_OBJECT_STR);
    cr_assert_eq(r.data.via.str.size, 64);
    memcpy(out, r.data.via.str.ptr, 64);
    out[64] = '\0';
    msgpack_unpacked_destroy(&r);
    cr_assert_eq(strspn(out, "0123456789abcdef"), 64, "not lowercase hex");
}

/* The first 64 characters of a command's output. It is read to the end so
 * the command never writes into a closed pipe. */
static void command_hex(const char *cmd, char out[65]) {
    char buf[256];
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    cr_assert_eq(pclose(f), 0, "%s failed", cmd);
    cr_assert_geq(n, 64, "%s printed %s", cmd, buf);
    memcpy(out, buf, 64);
    out[64] = '\0';
}

/* Python's hashlib over len bytes of data, n rounds. */
static void python_hex(const char *data, size_t len, long long n, char out[65]) {
    char hexin[512 + 1] = "";
    cr_assert_leq(len, 256);
    for (size_t i = 0; i < len; i++) sprintf(hexin + 2 * i, "%02x", (unsigned char)data[i]);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import hashlib,sys\n"
             "d=bytes.fromhex(sys.argv[1])\n"
             "for _ in range(int(sys.argv[2])): d=hashlib.sha256(d).digest()\n"
             "print(d.hex())' '%s' %lld",
             hexin, n);
    command_hex(cmd, out);
}

Test(builtins, sha256_one_round_matches_sha256sum) {
    char got[65], want[65];
    sha_payload("hello world", 11, 0, 1, 0);
    sha_result(got);
    command_hex("printf 'hello world' | sha256sum", want);
    cr_assert_str_eq(got, want);
}

Test(builtins, sha256_rounds_default_to_one) {
    char got[65], want[65];
    sha_payload("abc", 3, 0, 0, 1);
    sha_result(got);
    command_hex("printf 'abc' | sha256sum", want);
    cr_assert_str_eq(got, want);
}

Test(builtins, sha256_empty_data) {
    char got[65], want[65];
    sha_payload("", 0, 0, 1, 0);
    sha_result(got);
    command_hex("printf '' | sha256sum", want);
    cr_assert_str_eq(got, want);
}

Test(builtins, sha256_1000_rounds_matches_python) {
    char got[65], want[65];
    sha_payload("jobq", 4, 0, 1000, 0);
    sha_result(got);
    python_hex("jobq", 4, 1000, want);
    cr_assert_str_eq(got, want);
}

Test(builtins, sha256_bin_data_with_nul_bytes) {
    static const char data[] = {0, 1, 2, (char)0xff, 0, 'z'};
    char got[65], want[65];
    sha_payload(data, sizeof data, 1, 2, 0);
    sha_result(got);
    python_hex(data, sizeof data, 2, want);
    cr_assert_str_eq(got, want);
}

Test(builtins, sha256_bad_rounds) {
    static const long long bad[] = {0, -1, -1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msgpack_sbuffer_clear(&payload_buf);
        memset(task.error, 0, sizeof task.error);
        sha_payload("x", 1, 0, bad[i], 0);
        cr_assert_eq(handler("sha256")->run(&task), -1);
        cr_assert_str_eq(task.error, "sha256: rounds must be an integer >= 1");
    }
    /* Not an integer at all. */
    msgpack_sbuffer_clear(&payload_buf);
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "data");
    pack_cstr(pk, "x");
    pack_cstr(pk, "rounds");
    pack_cstr(pk, "3");
    set_payload();
    cr_assert_eq(handler("sha256")->run(&task), -1);
    cr_assert_str_eq(task.error, "sha256: rounds must be an integer >= 1");
    cr_assert_eq(task.failed, JQ_TASK_FAILED_PERMANENT);
    cr_assert_eq(task.result.size, 0);
}

Test(builtins, sha256_bad_data) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "data");
    msgpack_pack_int(pk, 5);
    set_payload();
    cr_assert_eq(handler("sha256")->run(&task), -1);
    cr_assert_str_eq(task.error, "sha256: payload must be a map {data: str or bin, "
                                 "rounds: N}");
    cr_assert_eq(task.failed, JQ_TASK_FAILED_PERMANENT);
}

Test(builtins, sha256_nil_payload) {
    msgpack_pack_nil(packer());
    set_payload();
    cr_assert_eq(handler("sha256")->run(&task), -1);
    cr_assert_eq(task.failed, JQ_TASK_FAILED_PERMANENT, "a malformed payload is not retried");
}

/* --- sleep, on a real loop */

static void sleep_payload(long long ms) {
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "ms");
    msgpack_pack_long_long(pk, ms);
    set_payload();
}

Test(builtins, sleep_fires_after_its_delay) {
    sleep_payload(50);
    /* The loop's clock was cached when the fixture made the loop; on a busy
     * machine that can be long ago, and the timer would be due early. */
    uv_update_time(&loop);
    uint64_t t0 = uv_hrtime();
    cr_assert_eq(handler("sleep")->start(&task), 0, "%s", task.error);
    cr_assert_eq(done_calls, 0, "sleep finished before the loop ran");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(task.failed, 0);
    cr_assert_eq(task.result.size, 0);
    /* libuv counts in whole loop milliseconds: allow one short. */
    uint64_t ms = (done_at_ns - t0) / 1000000;
    cr_assert_geq(ms, 49, "slept only %llu ms", (unsigned long long)ms);
    cr_assert_lt(ms, 1000, "slept %llu ms", (unsigned long long)ms);
}

Test(builtins, sleep_zero) {
    sleep_payload(0);
    cr_assert_eq(handler("sleep")->start(&task), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 1);
}

static void cancel_now(uv_timer_t *tm) {
    handler("sleep")->cancel(&task);
    uv_close((uv_handle_t *)tm, NULL);
}

Test(builtins, sleep_cancel_stops_the_timer) {
    uv_timer_t tm;
    sleep_payload(10000);
    uint64_t t0 = uv_hrtime();
    cr_assert_eq(handler("sleep")->start(&task), 0);
    uv_timer_init(&loop, &tm);
    uv_timer_start(&tm, cancel_now, 20, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 0, "a cancelled sleep called jq_task_done");
    cr_assert_lt((uv_hrtime() - t0) / 1000000, 2000, "cancel did not stop it");
}

Test(builtins, sleep_cancel_before_the_loop_runs) {
    sleep_payload(10000);
    cr_assert_eq(handler("sleep")->start(&task), 0);
    handler("sleep")->cancel(&task);
    /* The task may be gone now: the close callback must not need it. */
    memset(&task.hstate, 0xa5, sizeof task.hstate);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 0);
}

Test(builtins, sleep_bad_payloads) {
    static const char want[] = "sleep: payload must be a map {ms: N}";
    for (int k = 0; k < 5; k++) {
        msgpack_sbuffer_clear(&payload_buf);
        msgpack_packer *pk = packer();
        switch (k) {
            case 0: msgpack_pack_nil(pk); break;
            case 1: msgpack_pack_map(pk, 0); break;
            case 2:
                msgpack_pack_map(pk, 1);
                pack_cstr(pk, "ms");
                msgpack_pack_int(pk, -5);
                break;
            case 3:
                msgpack_pack_map(pk, 1);
                pack_cstr(pk, "ms");
                pack_cstr(pk, "10");
                break;
            case 4:
                msgpack_pack_map(pk, 1);
                pack_cstr(pk, "ms");
                msgpack_pack_double(pk, 1.5);
                break;
        }
        set_payload();
        memset(task.error, 0, sizeof task.error);
        cr_assert_eq(handler("sleep")->start(&task), -1, "case %d", k);
        cr_assert_str_eq(task.error, want, "case %d", k);
        cr_assert_eq(task.failed, JQ_TASK_FAILED_PERMANENT, "case %d", k);
    }
    cr_assert_eq(done_calls, 0);
}

/* --- fsstat (test handlers only): libuv threadpool work for bench/seed/ */

static const jq_handler_t *test_handler(const char *name) {
    static jq_registry_t treg;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&treg);
    cr_assert_eq(jq_builtins_register(&treg, 1, err, sizeof err), 0, "%s", err);
    return jq_registry_find(&treg, name, strlen(name));
}

static void fsstat_payload(const char *path, long long n) {
    msgpack_sbuffer_clear(&payload_buf);
    msgpack_packer *pk = packer();
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "path");
    pack_cstr(pk, path);
    pack_cstr(pk, "n");
    msgpack_pack_long_long(pk, n);
    set_payload();
}

Test(builtins, fsstat_only_with_test_handlers) {
    cr_assert_null(jq_registry_find(&reg, "fsstat", 6));
    cr_assert_not_null(test_handler("fsstat"));
}

Test(builtins, fsstat_stats_n_times_then_done) {
    fsstat_payload("/", 5);
    cr_assert_eq(test_handler("fsstat")->start(&task), 0, "%s", task.error);
    cr_assert_eq(done_calls, 0, "fsstat finished before the loop ran");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(task.failed, 0, "%s", task.error);
    cr_assert_eq(task.result.size, 0);
}

Test(builtins, fsstat_missing_path_fails_with_its_name) {
    fsstat_payload("/nonexistent/jobq-fsstat", 3);
    cr_assert_eq(test_handler("fsstat")->start(&task), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 1);
    cr_assert_eq(task.failed, 1);
    cr_assert(strstr(task.error, "fsstat: /nonexistent/jobq-fsstat: ") == task.error, "%s",
              task.error);
}

Test(builtins, fsstat_cancel_in_flight_never_calls_done) {
    fsstat_payload("/", 1000);
    cr_assert_eq(test_handler("fsstat")->start(&task), 0);
    test_handler("fsstat")->cancel(&task);
    memset(&task.hstate, 0xa5, sizeof task.hstate);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(done_calls, 0);
}

Test(builtins, fsstat_bad_payloads) {
    fsstat_payload("/", 0);
    cr_assert_eq(test_handler("fsstat")->start(&task), -1);
    cr_assert(strstr(task.error, "fsstat: payload must be a map") == task.error, "%s", task.error);
    cr_assert_eq(task.failed, JQ_TASK_FAILED_PERMANENT);
    fsstat_payload("", 1);
    cr_assert_eq(test_handler("fsstat")->start(&task), -1);
    fsstat_payload("/", 100001);
    cr_assert_eq(test_handler("fsstat")->start(&task), -1);
    cr_assert_eq(done_calls, 0);
}

/* --- which built-ins jq_builtins_register adds */

Test(builtins, registers_protocol_types) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_builtins_register(&r, 0, err, sizeof err), 0, "%s", err);
    static const struct {
        const char *name;
        jq_kind_t kind;
    } want[] = {{"noop", JQ_KIND_IO},
                {"echo", JQ_KIND_IO},
                {"sleep", JQ_KIND_IO},
                {"sha256", JQ_KIND_CPU},
                {"fail", JQ_KIND_IO}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const jq_handler_t *h = jq_registry_find(&r, want[i].name, strlen(want[i].name));
        cr_assert_not_null(h, "%s missing", want[i].name);
        cr_assert_eq(h->kind, want[i].kind, "%s has the wrong kind", want[i].name);
    }
    cr_assert_null(jq_registry_find(&r, "crash", 5), "crash registered without test handlers");
    cr_assert_not_null(jq_registry_find(&r, "sleep", 5)->cancel);
    cr_assert_eq(r.n, 5);
}

Test(builtins, crash_only_with_test_handlers) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_builtins_register(&r, 1, err, sizeof err), 0, "%s", err);
    const jq_handler_t *h = jq_registry_find(&r, "crash", 5);
    cr_assert_not_null(h);
    cr_assert_eq(h->kind, JQ_KIND_CPU);
    cr_assert_eq(r.n, 7); /* the five of PROTOCOL §8, crash and fsstat */
}

Test(builtins, crash_aborts, .signal = SIGABRT) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    jq_builtins_register(&r, 1, err, sizeof err);
    jq_task_t t;
    memset(&t, 0, sizeof t);
    jq_registry_find(&r, "crash", 5)->run(&t);
}

Test(builtins, register_twice_fails) {
    jq_registry_t r;
    char err[JQ_ERR_LEN] = "";
    jq_registry_init(&r);
    cr_assert_eq(jq_builtins_register(&r, 0, err, sizeof err), 0);
    cr_assert_eq(jq_builtins_register(&r, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "noop") != NULL, "err: %s", err);
}
