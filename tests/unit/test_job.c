/* Unit tests of common/job.c: parsing and validating stream entries. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "job.h"

static const jq_job_limits_t lim = {.max_payload = 64LL << 20, .timeout_ms = 1800000};

/* Parses the NULL-terminated field/value strings of one entry. */
static int parse_entry(jq_job_t *job, const char *entry_id, char *err, const char **fields) {
    jq_str_t fv[32];
    size_t n = 0;
    for (; fields[n]; n++) fv[n] = (jq_str_t){fields[n], strlen(fields[n])};
    err[0] = '\0';
    return jq_job_parse(job, entry_id, fv, n, &lim, err, 256);
}

#define FIELDS(...) ((const char *[]){__VA_ARGS__, NULL})

static void expect_error(const char **fields, const char *want) {
    jq_job_t job;
    char err[256];
    cr_expect_eq(parse_entry(&job, "1-0", err, fields), -1, "accepted, want %s", want);
    cr_expect(strstr(err, want) != NULL, "got '%s', want '%s'", err, want);
}

Test(job, minimal_entry_gets_defaults) {
    jq_job_t job;
    char err[256];
    cr_assert_eq(parse_entry(&job, "1700000000123-7", err, FIELDS("type", "noop")), 0, "%s", err);
    cr_expect_str_eq(job.entry_id, "1700000000123-7");
    cr_expect_str_eq(job.id, "1700000000123-7");
    cr_expect_eq(job.type.len, 4);
    cr_expect(memcmp(job.type.p, "noop", 4) == 0);
    cr_expect_eq(job.has_payload, 0);
    cr_expect_eq(job.enc, JQ_ENC_MSGPACK);
    cr_expect_eq(job.chunks, 0);
    cr_expect_eq(job.max_attempts, JQ_DEFAULT_MAX_ATTEMPTS);
    cr_expect_eq(job.timeout_ms, 1800000);
    cr_expect_eq(job.result_ttl, JQ_DEFAULT_RESULT_TTL);
    cr_expect_eq(job.attempt, 0);
    cr_expect_eq(job.enqueued_ms, 1700000000123LL);
}

Test(job, full_entry) {
    jq_job_t job;
    char err[256];
    const char **f = FIELDS("type", "sha256", "payload", "{\"rounds\":1}", "enc", "json", "id",
                            "job-42", "max_attempts", "5", "timeout_ms", "2500", "result_ttl", "0",
                            "attempt", "2", "size", "12", "x-trace", "abc");
    cr_assert_eq(parse_entry(&job, "5-1", err, f), 0, "%s", err);
    cr_expect_str_eq(job.id, "job-42");
    cr_expect_str_eq(job.entry_id, "5-1");
    cr_expect_eq(job.enc, JQ_ENC_JSON);
    cr_expect_eq(job.has_payload, 1);
    cr_expect_eq(job.payload.len, 12);
    cr_expect(job.payload.p == f[3], "payload is borrowed, not copied");
    cr_expect_eq(job.max_attempts, 5);
    cr_expect_eq(job.timeout_ms, 2500);
    cr_expect_eq(job.result_ttl, 0);
    cr_expect_eq(job.attempt, 2);
    cr_expect_eq(job.enqueued_ms, 5);
}

Test(job, binary_payload_keeps_its_length) {
    jq_job_t job;
    char err[256];
    jq_str_t fv[] = {{"type", 4}, {"echo", 4}, {"payload", 7}, {"\x92\x00\x01", 3}};
    /* A NUL inside the payload must not cut it. */
    jq_str_t fv2[] = {{"type", 4}, {"echo", 4}, {"payload", 7}, {"a\0b", 3}};
    cr_assert_eq(jq_job_parse(&job, "1-0", fv, 4, &lim, err, sizeof(err)), 0);
    cr_expect_eq(job.payload.len, 3);
    cr_assert_eq(jq_job_parse(&job, "1-0", fv2, 4, &lim, err, sizeof(err)), 0);
    cr_expect_eq(job.payload.len, 3);
}

Test(job, chunked_entry) {
    jq_job_t job;
    char err[256];
    cr_assert_eq(parse_entry(&job, "9-0", err,
                             FIELDS("type", "echo", "id", "big", "chunks", "3", "size", "3000000")),
                 0, "%s", err);
    cr_expect_eq(job.chunks, 3);
    cr_expect_eq(job.size, 3000000);
    cr_expect_eq(job.has_payload, 0);
}

Test(job, missing_type) {
    expect_error(FIELDS("payload", "x"), "missing field: type");
    expect_error(FIELDS("type", ""), "bad field type");
}

Test(job, bad_numbers) {
    expect_error(FIELDS("type", "noop", "max_attempts", "x"),
                 "bad field max_attempts: 'x' (want an integer");
    expect_error(FIELDS("type", "noop", "max_attempts", "0"), "bad field max_attempts: '0'");
    expect_error(FIELDS("type", "noop", "max_attempts", "-1"), "bad field max_attempts: '-1'");
    expect_error(FIELDS("type", "noop", "max_attempts", " 3"), "bad field max_attempts");
    expect_error(FIELDS("type", "noop", "timeout_ms", "0"),
                 "bad field timeout_ms: '0' (want an integer >= 1)");
    expect_error(FIELDS("type", "noop", "result_ttl", "-5"),
                 "bad field result_ttl: '-5' (want an integer >= 0)");
    expect_error(FIELDS("type", "noop", "attempt", "two"),
                 "bad field attempt: 'two' (want an integer >= 0)");
    expect_error(FIELDS("type", "noop", "id", "x", "chunks", "0", "size", "1"),
                 "bad field chunks: '0' (want an integer >= 1)");
    expect_error(FIELDS("type", "noop", "id", "x", "chunks", "1", "size", "z"),
                 "bad field size: 'z'");
}

Test(job, unknown_enc) { expect_error(FIELDS("type", "noop", "enc", "xml"), "unknown enc: xml"); }

Test(job, chunks_rules) {
    expect_error(FIELDS("type", "echo", "chunks", "2", "size", "10"), "chunks needs an id field");
    expect_error(FIELDS("type", "echo", "id", "a", "chunks", "2"), "chunks needs a size field");
    expect_error(FIELDS("type", "echo", "id", "a", "chunks", "2", "size", "2", "payload", "xy"),
                 "must not carry a payload");
}

Test(job, payload_too_large) {
    expect_error(FIELDS("type", "echo", "id", "a", "chunks", "2", "size", "70000000"),
                 "payload too large: 70000000 bytes > max-payload 67108864");

    jq_job_limits_t small = {.max_payload = 4, .timeout_ms = 1000};
    jq_str_t fv[] = {{"type", 4}, {"echo", 4}, {"payload", 7}, {"12345", 5}};
    jq_job_t job;
    char err[256];
    cr_expect_eq(jq_job_parse(&job, "1-0", fv, 4, &small, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "payload too large: 5 bytes > max-payload 4");
    fv[3].len = 4;
    cr_expect_eq(jq_job_parse(&job, "1-0", fv, 4, &small, err, sizeof(err)), 0, "%s", err);
}

Test(job, size_mismatch) {
    expect_error(FIELDS("type", "echo", "payload", "abc", "size", "4"), "size mismatch");
}

Test(job, bad_id) {
    jq_job_t job;
    char err[256];
    cr_expect_eq(parse_entry(&job, "3-0", err, FIELDS("type", "x", "id", "a b")), -1);
    cr_expect(strstr(err, "bad field id: 'a b'") != NULL, "%s", err);
    /* A bad id cannot name the job: the entry id does. */
    cr_expect_str_eq(job.id, "3-0");
}

Test(job, error_still_names_the_job) {
    jq_job_t job;
    char err[256];
    cr_expect_eq(
        parse_entry(&job, "3-0", err, FIELDS("type", "x", "max_attempts", "x", "id", "mine")), -1);
    cr_expect_str_eq(job.id, "mine");
    cr_expect_eq(parse_entry(&job, "4-0", err, FIELDS("id", "other")), -1);
    cr_expect_str_eq(err, "missing field: type");
    cr_expect_str_eq(job.id, "other");
}

/* PROTOCOL 1.2 §3: `notify 1` says a client waits; absent or 0, none
 * does; anything else is a bad field. Known even when the entry is
 * refused for another field, wherever it stands, so that the dead letter
 * still wakes the waiter. */
Test(job, notify) {
    jq_job_t job;
    char err[256];
    cr_assert_eq(parse_entry(&job, "1-0", err, FIELDS("type", "x", "notify", "1")), 0, "%s", err);
    cr_expect_eq(job.notify, 1);
    cr_assert_eq(parse_entry(&job, "1-0", err, FIELDS("type", "x", "notify", "0")), 0, "%s", err);
    cr_expect_eq(job.notify, 0);
    cr_assert_eq(parse_entry(&job, "1-0", err, FIELDS("type", "x")), 0, "%s", err);
    cr_expect_eq(job.notify, 0);
    expect_error(FIELDS("type", "x", "notify", "yes"), "bad field notify: 'yes' (want 0 or 1)");
    expect_error(FIELDS("type", "x", "notify", "11"), "bad field notify: '11' (want 0 or 1)");
    cr_expect_eq(
        parse_entry(&job, "1-0", err, FIELDS("type", "x", "max_attempts", "0", "notify", "1")), -1);
    cr_expect_eq(job.notify, 1);
    cr_expect_eq(parse_entry(&job, "1-0", err, FIELDS("id", "a b", "notify", "1")), -1);
    cr_expect_eq(job.notify, 1);
}

Test(job, odd_field_count) {
    jq_job_t job;
    char err[256];
    jq_str_t fv[] = {{"type", 4}, {"noop", 4}, {"payload", 7}};
    cr_expect_eq(jq_job_parse(&job, "1-0", fv, 3, &lim, err, sizeof(err)), -1);
    cr_expect(strstr(err, "odd number of fields") != NULL, "%s", err);
}

Test(job, bad_value_is_quoted_printably) {
    char big[100];
    memset(big, 'q', sizeof(big) - 1);
    big[99] = '\0';
    big[0] = '\x01';
    jq_job_t job;
    char err[256];
    cr_expect_eq(parse_entry(&job, "1-0", err, FIELDS("type", "x", "max_attempts", big)), -1);
    cr_expect(strstr(err, "'?qqq") != NULL, "%s", err);
    cr_expect(strstr(err, "...'") != NULL, "%s", err);
    cr_expect_lt(strlen(err), 120);
}

Test(job, field_kept) {
    cr_expect(jq_job_field_kept("type", 4));
    cr_expect(jq_job_field_kept("payload", 7));
    cr_expect(jq_job_field_kept("x-trace", 7));
    cr_expect(!jq_job_field_kept("error", 5));
    cr_expect(!jq_job_field_kept("attempt", 7));
    cr_expect(!jq_job_field_kept("failed_at", 9));
    cr_expect(!jq_job_field_kept("priority", 8));
    cr_expect(jq_job_field_kept("attempts", 8));
    cr_expect(jq_job_field_kept("errors", 6));
}

Test(job, parse_ll) {
    long long v = 0;
    cr_expect_eq(jq_parse_ll("42", 2, 0, 100, &v), 0);
    cr_expect_eq(v, 42);
    cr_expect_eq(jq_parse_ll("-3", 2, -5, 5, &v), 0);
    cr_expect_eq(v, -3);
    cr_expect_eq(jq_parse_ll("423", 2, 0, 100, &v), 0, "only len bytes count");
    cr_expect_eq(v, 42);
    cr_expect_eq(jq_parse_ll("101", 3, 0, 100, &v), -1);
    cr_expect_eq(jq_parse_ll("", 0, 0, 100, &v), -1);
    cr_expect_eq(jq_parse_ll("4x", 2, 0, 100, &v), -1);
    cr_expect_eq(jq_parse_ll("+4", 2, 0, 100, &v), -1);
    cr_expect_eq(jq_parse_ll(" 4", 2, 0, 100, &v), -1);
    cr_expect_eq(jq_parse_ll("\t4", 2, 0, 100, &v), -1, "no space of any kind");
    cr_expect_eq(jq_parse_ll("99999999999999999999", 20, 0, 100, &v), -1);
}

Test(job, now_ms_is_wall_clock) {
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t now = jq_now_ms();
    cr_expect(now >= before && now < before + 2000, "%lld vs %lld", (long long)now,
              (long long)before);
}

/* PROTOCOL §1 "Limits": the fields of one job, their names and values
 * (the payload aside), each bounded, the largest allowed and one past. */
Test(job, field_bounds) {
    static jq_str_t fv[2 * (JQ_JOB_MAX_FIELDS + 3)];
    static char names[JQ_JOB_MAX_FIELDS + 1][16];
    static char big[JQ_JOB_MAX_VALUE + 2];
    jq_job_t job;
    char err[256];
    size_t n = 0;
    fv[n++] = (jq_str_t){"id", 2};
    fv[n++] = (jq_str_t){"j1", 2};
    fv[n++] = (jq_str_t){"attempt", 7};
    fv[n++] = (jq_str_t){"1", 1};
    fv[n++] = (jq_str_t){"type", 4};
    fv[n++] = (jq_str_t){"noop", 4};
    for (int i = 1; i < JQ_JOB_MAX_FIELDS; i++) {
        snprintf(names[i], sizeof(names[i]), "x%d", i);
        fv[n++] = (jq_str_t){names[i], strlen(names[i])};
        fv[n++] = (jq_str_t){"v", 1};
    }
    cr_assert_eq(jq_job_parse(&job, "1-0", fv, n, &lim, err, sizeof(err)), 0, "%s", err);
    fv[n++] = (jq_str_t){"one", 3};
    fv[n++] = (jq_str_t){"more", 4};
    cr_assert_eq(jq_job_parse(&job, "1-0", fv, n, &lim, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "too many fields: 1001 (at most 1000 besides id and attempt)");
    cr_expect_str_eq(job.id, "j1", "dead-lettered under its id");

    memset(big, 'n', sizeof(big));
    jq_str_t one[4] = {{"type", 4}, {"noop", 4}, {big, JQ_JOB_MAX_NAME}, {big, JQ_JOB_MAX_VALUE}};
    cr_expect_eq(jq_job_parse(&job, "1-0", one, 4, &lim, err, sizeof(err)), 0, "%s", err);
    one[2].len++;
    cr_expect_eq(jq_job_parse(&job, "1-0", one, 4, &lim, err, sizeof(err)), -1);
    cr_expect(strstr(err, "field name too long: 257 bytes") == err, "%s", err);
    one[2].len--;
    one[3].len++;
    cr_expect_eq(jq_job_parse(&job, "1-0", one, 4, &lim, err, sizeof(err)), -1);
    cr_expect(strstr(err, "too long: 65537 bytes (at most 65536; only payload") != NULL, "%s", err);
    one[2] = (jq_str_t){"payload", 7};
    cr_expect_eq(jq_job_parse(&job, "1-0", one, 4, &lim, err, sizeof(err)), 0, "%s", err);
}

/* Values the reader skipped for their size ({NULL, length}, bulkcap.h):
 * named by their size first, never dereferenced. */
Test(job, an_unread_payload_is_named_by_its_size) {
    jq_str_t fv[] = {{"type", 4}, {"noop", 4},    {"owner", 5},
                     {"me", 2},   {"payload", 7}, {NULL, 209715200}};
    jq_job_t job;
    char err[256];
    cr_assert_eq(jq_job_parse(&job, "1-0", fv, 6, &lim, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "payload too large: 209715200 bytes > max-payload 67108864");
    /* Another unread value, or an unread name: too long, never read. */
    jq_str_t other[] = {{"type", 4}, {"noop", 4}, {"note", 4}, {NULL, 2000000}};
    cr_assert_eq(jq_job_parse(&job, "1-0", other, 4, &lim, err, sizeof(err)), -1);
    cr_assert(strstr(err, "field note too long: 2000000 bytes"), "%s", err);
    jq_str_t name[] = {{NULL, 3000000}, {"v", 1}, {"type", 4}, {"noop", 4}};
    cr_assert_eq(jq_job_parse(&job, "1-0", name, 4, &lim, err, sizeof(err)), -1);
    cr_assert(strstr(err, "(3000000 bytes, not read)"), "%s", err);
}

Test(job, a_job_whose_payload_was_dropped_does_not_run_without_it) {
    expect_error(FIELDS("type", "noop", "payload_dropped", "209715200"),
                 "payload dropped: the job died before with a payload of 209715200 bytes");
}

/* Job control (PROTOCOL §10, §12): read before any check can fail, so a
 * job dead-lettered on arrival still gives back its key and counts in its
 * batch; a value that is not valid holds nothing. */
Test(job, unique_and_batch) {
    jq_job_t job;
    char err[256];
    cr_assert_eq(parse_entry(&job, "1-0", err,
                             FIELDS("type", "noop", "unique", "report-7", "unique_until",
                                    "1796417400001", "batch", "default:9f2c")),
                 0, "%s", err);
    cr_expect(job.unique.len == 8 && memcmp(job.unique.p, "report-7", 8) == 0);
    cr_expect_eq(job.unique_until, 1796417400001LL);
    cr_expect(job.batch.len == 12 && memcmp(job.batch.p, "default:9f2c", 12) == 0);
    cr_expect_eq(parse_entry(&job, "1-0", err, FIELDS("unique", "k", "enc", "xml", "type", "x")),
                 -1);
    cr_expect_eq(job.unique.len, 1, "read before the error");
    cr_assert_eq(
        parse_entry(&job, "1-0", err, FIELDS("type", "noop", "unique", "a b", "batch", "nocolon")),
        0, "%s", err);
    cr_expect_eq(job.unique.len, 0);
    cr_expect_eq(job.batch.len, 0);
    size_t ql;
    cr_expect_eq(jq_batch_id_split("a:b:c", 5, &ql), 0);
    cr_expect_eq(ql, 3);
    cr_expect_eq(jq_batch_id_split(":c", 2, &ql), -1);
    cr_expect_eq(jq_batch_id_split("c:", 2, &ql), -1);
}
