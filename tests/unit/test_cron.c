/* Unit tests of common/cron.c and common/tz.c: cron expressions, their next
 * fire times in a time zone across the 2026 DST changes (the table was
 * checked against Python's zoneinfo), intervals and durations. */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cron.h"

/* "2026-03-08T07:00Z" (UTC, whole minutes) to ms since the epoch. */
static int64_t utc(const char *s) {
    int y, mo, d, h, mi;
    cr_assert_eq(sscanf(s, "%d-%d-%dT%d:%dZ", &y, &mo, &d, &h, &mi), 5, "%s", s);
    return (jq_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static void iso(int64_t ms, char *buf, size_t cap) {
    if (ms < 0) {
        snprintf(buf, cap, "none");
        return;
    }
    int64_t y, s = ms / 1000;
    int mo, d;
    jq_civil_from_days(s / 86400, &y, &mo, &d);
    snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02dZ", (long long)y, mo, d, (int)(s % 86400 / 3600),
             (int)(s % 3600 / 60));
}

static const struct {
    const char *expr, *tz, *after, *next;
} TABLE[] = {
    /* New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z). A
     * fixed 02:30 does not exist that day: it fires at the jump, once. */
    {"30 2 * * *", "America/New_York", "2026-03-07T08:00Z", "2026-03-08T07:00Z"},
    {"30 2 * * *", "America/New_York", "2026-03-08T07:00Z", "2026-03-09T06:30Z"},
    /* A wildcard job's minutes in the skipped hour do not happen. */
    {"*/30 * * * *", "America/New_York", "2026-03-08T06:45Z", "2026-03-08T07:00Z"},
    /* Fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z): a fixed 01:30
     * fires at its first occurrence only... */
    {"30 1 * * *", "America/New_York", "2026-10-31T12:00Z", "2026-11-01T05:30Z"},
    {"30 1 * * *", "America/New_York", "2026-11-01T05:30Z", "2026-11-02T06:30Z"},
    /* ...an hourly job fires in both 01:00s, an hour apart. */
    {"0 * * * *", "America/New_York", "2026-11-01T05:00Z", "2026-11-01T06:00Z"},
    /* Berlin: spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z),
     * fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z). */
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00Z", "2026-03-29T01:00Z"},
    {"0 9 * * 1-5", "Europe/Berlin", "2026-03-27T12:00Z", "2026-03-30T07:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00Z", "2026-10-25T00:30Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30Z", "2026-10-26T01:30Z"},
    {"0 9 * * *", "Europe/Berlin", "2026-10-25T12:00Z", "2026-10-26T08:00Z"},
    /* Past the file's last transition (2037): the footer's rule. */
    {"30 2 * * *", "America/New_York", "2040-03-10T12:00Z", "2040-03-11T07:00Z"},
    /* The southern hemisphere: DST over the new year. */
    {"0 12 * * *", "Australia/Sydney", "2026-01-15T00:00Z", "2026-01-15T01:00Z"},
    {"0 12 * * *", "Australia/Sydney", "2026-07-15T00:00Z", "2026-07-15T02:00Z"},
    /* Vixie's day rule: DOM and DOW both restricted is either; one `*` is
     * both. 2026-02-01 is a Sunday; Friday the 6th comes before the 13th. */
    {"0 0 13 * 5", NULL, "2026-02-01T00:00Z", "2026-02-06T00:00Z"},
    {"0 0 13 * *", NULL, "2026-02-01T00:00Z", "2026-02-13T00:00Z"},
    {"0 0 * * fri", NULL, "2026-02-01T00:00Z", "2026-02-06T00:00Z"},
    {"0 0 13 * 7", NULL, "2026-02-01T00:00Z", "2026-02-08T00:00Z"},
    {"0 12 * jan,JUL mon", "UTC", "2026-06-01T00:00Z", "2026-07-06T12:00Z"},
    {"0 0 29 2 *", NULL, "2026-03-01T00:00Z", "2028-02-29T00:00Z"},
    {"5-10/5,59 * * * *", NULL, "2026-01-01T00:05Z", "2026-01-01T00:10Z"},
    {"5-10/5,59 * * * *", NULL, "2026-01-01T00:10Z", "2026-01-01T00:59Z"},
    {"10/20 * * * *", NULL, "2026-01-01T00:31Z", "2026-01-01T00:50Z"},
    {"@hourly", NULL, "2026-01-01T00:00Z", "2026-01-01T01:00Z"},
    {"@weekly", NULL, "2026-02-01T00:00Z", "2026-02-08T00:00Z"},
    {"0 0 30 2 *", NULL, "2026-01-01T00:00Z", NULL},
};

Test(cron, next_fire_table) {
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++) {
        jq_cron_t c;
        char err[256], got[32];
        cr_assert_eq(jq_cron_parse(&c, TABLE[i].expr, err, sizeof(err)), 0, "%s: %s", TABLE[i].expr,
                     err);
        jq_tz_t *tz = jq_tz_load(TABLE[i].tz, err, sizeof(err));
        cr_assert(tz, "%s", err);
        iso(jq_cron_next(&c, tz, utc(TABLE[i].after)), got, sizeof(got));
        cr_expect_str_eq(got, TABLE[i].next ? TABLE[i].next : "none", "'%s' in %s after %s",
                         TABLE[i].expr, TABLE[i].tz ? TABLE[i].tz : "UTC", TABLE[i].after);
        jq_tz_free(tz);
    }
}

Test(cron, strictly_after_and_whole_minutes) {
    jq_cron_t c;
    char err[256];
    cr_assert_eq(jq_cron_parse(&c, "* * * * *", err, sizeof(err)), 0);
    int64_t t = utc("2026-01-01T00:00Z");
    cr_expect_eq(jq_cron_next(&c, NULL, t), t + 60000);
    cr_expect_eq(jq_cron_next(&c, NULL, t + 59999), t + 60000);
    cr_expect_eq(jq_cron_next(&c, NULL, t - 1), t);
}

Test(cron, bad_expressions_name_the_field) {
    static const struct {
        const char *expr, *err;
    } BAD[] = {
        {"61 * * * *", "cron minute field: 61 is out of range 0-59"},
        {"* 24 * * *", "cron hour field: 24 is out of range 0-23"},
        {"* * * *", "cron expression needs 5 fields"},
        {"* * * * * *", "cron expression has more than 5 fields"},
        {"5-1 * * * *", "cron minute field: range 5-1 goes backwards"},
        {"*/0 * * * *", "cron minute field: bad step"},
        {"x * * * *", "cron minute field: bad value"},
        {"* * * foo *", "cron month field: bad value"},
        {"* * 0 * *", "cron day-of-month field: 0 is out of range 1-31"},
        {"1,,2 * * * *", "cron minute field: bad value"},
        {"@sometimes", "unknown cron macro"},
        {"", "cron expression needs 5 fields"},
    };
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        jq_cron_t c;
        char err[256] = "";
        cr_expect_eq(jq_cron_parse(&c, BAD[i].expr, err, sizeof(err)), -1, "'%s'", BAD[i].expr);
        cr_expect(strstr(err, BAD[i].err), "'%s': got '%s'", BAD[i].expr, err);
    }
}

Test(cron, durations) {
    int64_t ms;
    char err[256];
    cr_expect_eq(jq_duration_parse("500ms", &ms, err, sizeof(err)), 0);
    cr_expect_eq(ms, 500);
    jq_duration_parse("10s", &ms, err, sizeof(err));
    cr_expect_eq(ms, 10000);
    jq_duration_parse("5m", &ms, err, sizeof(err));
    cr_expect_eq(ms, 300000);
    jq_duration_parse("1h", &ms, err, sizeof(err));
    cr_expect_eq(ms, 3600000);
    jq_duration_parse("2d", &ms, err, sizeof(err));
    cr_expect_eq(ms, 172800000);
    const char *bad[] = {"10", "1.5s", "0s", "10x", "s", "-1s", "50ms", "400d", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(jq_duration_parse(bad[i], &ms, err, sizeof(err)), -1, "'%s'", bad[i]);
}

Test(cron, every_ticks_are_multiples) {
    cr_expect_eq(jq_every_next(1000, 1500), 2000);
    cr_expect_eq(jq_every_next(1000, 2000), 3000);
    cr_expect_eq(jq_every_next(60000, 1796405124916), 1796405160000);
}

Test(tz, unknown_zones_are_refused) {
    char err[256];
    cr_expect_null(jq_tz_load("Mars/Olympus", err, sizeof(err)));
    cr_expect(strstr(err, "unknown time zone 'Mars/Olympus'"), "%s", err);
    cr_expect_null(jq_tz_load("../../etc/passwd", err, sizeof(err)));
    cr_expect_null(jq_tz_load("/etc/passwd", err, sizeof(err)));
    jq_tz_t *utc_tz = jq_tz_load("UTC", err, sizeof(err));
    cr_expect_eq(jq_tz_offset(utc_tz, 0), 0);
    jq_tz_free(utc_tz);
}

Test(tz, offsets_around_a_change) {
    char err[256];
    jq_tz_t *ny = jq_tz_load("America/New_York", err, sizeof(err));
    cr_assert(ny, "%s", err);
    int64_t t = utc("2026-03-08T07:00Z") / 1000;
    cr_expect_eq(jq_tz_offset(ny, t - 1), -5 * 3600);
    cr_expect_eq(jq_tz_offset(ny, t), -4 * 3600);
    cr_expect_eq(jq_tz_next_change(ny, t - 1), t);
    cr_expect_eq(jq_tz_next_change(ny, t), utc("2026-11-01T06:00Z") / 1000);
    jq_tz_free(ny);
}
