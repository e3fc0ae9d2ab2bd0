/* Unit tests of common/url.c: Redis URL parsing and printing. */

#include <criterion/criterion.h>
#include <string.h>

#include "url.h"

static jq_url_t parse_ok(const char *s) {
    jq_url_t u;
    char err[256] = "";
    cr_assert_eq(jq_url_parse(s, &u, err, sizeof(err)), 0, "%s: %s", s, err);
    return u;
}

static void expect_error(const char *s, const char *want) {
    jq_url_t u;
    char err[256] = "";
    cr_expect_eq(jq_url_parse(s, &u, err, sizeof(err)), -1, "accepted %s", s);
    cr_expect(strstr(err, want) != NULL, "error for %s: '%s', want '%s'", s, err, want);
}

Test(url, host_port_db) {
    jq_url_t u = parse_ok("redis://cache.local:6380/3");
    cr_expect_eq(u.is_unix, 0);
    cr_expect_str_eq(u.host, "cache.local");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 3);
    cr_expect_str_eq(u.user, "");
    cr_expect_str_eq(u.password, "");
}

Test(url, defaults) {
    jq_url_t u = parse_ok("redis://10.0.0.5");
    cr_expect_str_eq(u.host, "10.0.0.5");
    cr_expect_eq(u.port, 6379);
    cr_expect_eq(u.db, 0);

    u = parse_ok("redis://h/");
    cr_expect_eq(u.port, 6379);
    cr_expect_eq(u.db, 0);

    u = parse_ok(JQ_URL_DEFAULT);
    cr_expect_str_eq(u.host, "127.0.0.1");
    cr_expect_eq(u.port, 6379);
}

Test(url, user_and_password) {
    jq_url_t u = parse_ok("redis://alice:s3cret@h:7000/1");
    cr_expect_str_eq(u.user, "alice");
    cr_expect_str_eq(u.password, "s3cret");
    cr_expect_str_eq(u.host, "h");
    cr_expect_eq(u.port, 7000);
    cr_expect_eq(u.db, 1);
}

Test(url, rediss_is_tls_over_tcp) {
    jq_url_t u = parse_ok("rediss://alice:s3cret@cache.example.com:6380/2");
    cr_expect_eq(u.tls, 1);
    cr_expect_eq(u.is_unix, 0);
    cr_expect_str_eq(u.host, "cache.example.com");
    cr_expect_eq(u.port, 6380);
    cr_expect_eq(u.db, 2);
    cr_expect_str_eq(u.password, "s3cret");
    char buf[256];
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "rediss://alice:***@cache.example.com:6380/2");
    cr_expect_eq(parse_ok("RediSS://h").tls, 1);
    cr_expect_eq(parse_ok("redis://h").tls, 0);
}

Test(url, password_only) {
    jq_url_t u = parse_ok("redis://:pw@h");
    cr_expect_str_eq(u.user, "");
    cr_expect_str_eq(u.password, "pw");

    /* As redis-cli -u reads it: no colon means a password. */
    u = parse_ok("redis://pw2@h");
    cr_expect_str_eq(u.user, "");
    cr_expect_str_eq(u.password, "pw2");
}

Test(url, password_with_special_characters) {
    jq_url_t u = parse_ok("redis://:p%40ss%3Aw@h:1");
    cr_expect_str_eq(u.password, "p@ss:w");
    u = parse_ok("redis://:a@b/c@h:2");
    cr_expect_str_eq(u.password, "a@b/c");
    cr_expect_str_eq(u.host, "h");
    cr_expect_eq(u.port, 2);
    expect_error("redis://:bad%zz@h", "password");
}

Test(url, ipv6) {
    jq_url_t u = parse_ok("redis://[::1]:6390");
    cr_expect_str_eq(u.host, "::1");
    cr_expect_eq(u.port, 6390);
}

Test(url, unix_socket) {
    jq_url_t u = parse_ok("unix:///run/redis/redis.sock");
    cr_expect_eq(u.is_unix, 1);
    cr_expect_str_eq(u.path, "/run/redis/redis.sock");
    cr_expect_eq(u.db, 0);

    u = parse_ok("unix:///tmp/r.sock?db=4");
    cr_expect_str_eq(u.path, "/tmp/r.sock");
    cr_expect_eq(u.db, 4);

    u = parse_ok("unix://:pw@/tmp/r.sock");
    cr_expect_str_eq(u.password, "pw");
    cr_expect_str_eq(u.path, "/tmp/r.sock");

    expect_error("unix://relative.sock", "unix:///absolute/path");
    expect_error("unix:///tmp/r.sock?x=1", "db=N");
}

Test(url, bad_scheme) {
    expect_error("http://h:6379", "expected redis://, rediss://");
    expect_error("localhost:6379", "expected redis://, rediss://");
    expect_error("", "expected redis://, rediss://");
}

Test(url, bad_port) {
    expect_error("redis://h:0", "port '0'");
    expect_error("redis://h:65536", "port '65536'");
    expect_error("redis://h:abc", "port 'abc'");
    expect_error("redis://h:", "port ''");
    expect_error("redis://h:-1", "port");
    expect_error("redis://h:+1", "port '+1'");
    expect_error("redis://h: 1", "port ' 1'");
    expect_error("redis://h/-0", "database '-0'");
    expect_error("unix:///r.sock?db=+1", "db=N");
}

Test(url, bad_host_and_db) {
    expect_error("redis://", "host is missing");
    expect_error("redis://:pw@:6379", "host is missing");
    expect_error("redis://h/x", "database 'x'");
}

Test(url, format_hides_the_password) {
    char buf[600];
    jq_url_t u = parse_ok("redis://alice:s3cret@h:7000/2");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis://alice:***@h:7000/2");
    cr_expect_null(strstr(buf, "s3cret"));

    u = parse_ok("redis://h");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis://h:6379");

    u = parse_ok("unix:///tmp/r.sock?db=3");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "unix:///tmp/r.sock?db=3");

    u = parse_ok("redis://[::1]:1");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis://[::1]:1");

    /* Whatever the format writes parses back to the same place. */
    u = parse_ok("redis://h:7000/2");
    jq_url_format(&u, buf, sizeof(buf));
    jq_url_t v = parse_ok(buf);
    cr_expect_str_eq(v.host, "h");
    cr_expect_eq(v.port, 7000);
    cr_expect_eq(v.db, 2);
}

Test(url, format_truncates_safely) {
    char buf[8];
    jq_url_t u = parse_ok("redis://a-long-host-name:7000/2");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_eq(strlen(buf), 7);
}

/* Errors name the URL, as given, but never its password: they reach logs
 * and terminals. */
Test(url, errors_hide_the_password) {
    static const char *bad[] = {
        "redis://alice:s3cret@h:99999",
        "redis://:s3cret@h/notanumber",
        "redis://s3cret@h:0",
        "redis://alice:s3cret@[::1",
        "redis://alice:s3cret@h?db=x",
        "unix://alice:s3cret@/tmp/s?db=x",
        "unix://:s3cret@/",
        "rediss://alice:s3cret@h:0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        jq_url_t u;
        char err[256] = "";
        cr_expect_eq(jq_url_parse(bad[i], &u, err, sizeof(err)), -1, "accepted %s", bad[i]);
        cr_expect_null(strstr(err, "s3cret"), "password in error: %s", err);
        cr_expect_not_null(strstr(err, "***"), "no mask in error: %s", err);
        cr_expect_str_eq(u.password, "", "password kept after an error: %s", bad[i]);
    }
}

/* ---- redis+sentinel:// ---- */

Test(url, sentinel_hosts_master_db) {
    jq_url_t u = parse_ok("redis+sentinel://alice:pw@s1:26380,10.0.0.2,[::1]:26381/mymaster/2");
    cr_expect(jq_url_sentinel(&u));
    cr_expect_eq(u.nsentinels, 3);
    cr_expect_str_eq(u.sentinels[0].host, "s1");
    cr_expect_eq(u.sentinels[0].port, 26380);
    cr_expect_str_eq(u.sentinels[1].host, "10.0.0.2");
    cr_expect_eq(u.sentinels[1].port, JQ_URL_SENTINEL_PORT);
    cr_expect_str_eq(u.sentinels[2].host, "::1");
    cr_expect_eq(u.sentinels[2].port, 26381);
    cr_expect_str_eq(u.master_name, "mymaster");
    cr_expect_eq(u.db, 2);
    cr_expect_str_eq(u.user, "alice");
    cr_expect_str_eq(u.password, "pw");
    cr_expect_str_eq(u.sentinel_password, "");
    cr_expect_str_eq(u.host, "");
    cr_expect_eq(u.is_unix, 0);

    u = parse_ok("REDIS+SENTINEL://h/m");
    cr_expect_eq(u.nsentinels, 1);
    cr_expect_str_eq(u.master_name, "m");
    cr_expect_eq(u.db, 0);
    cr_expect(!jq_url_sentinel(&(jq_url_t){0}));
    u = parse_ok("redis://h");
    cr_expect(!jq_url_sentinel(&u));
}

Test(url, sentinel_password) {
    /* The master's password may hold '@' and '/'; the sentinels' has its
     * own query parameter, percent-encoded. */
    jq_url_t u = parse_ok("redis+sentinel://:p@ss/w@h:1/m?sentinel_password=s%40nt");
    cr_expect_str_eq(u.password, "p@ss/w");
    cr_expect_str_eq(u.sentinels[0].host, "h");
    cr_expect_str_eq(u.master_name, "m");
    cr_expect_str_eq(u.sentinel_password, "s@nt");
    u = parse_ok("redis+sentinel://h/m/3?sentinel_password=x");
    cr_expect_eq(u.db, 3);
    cr_expect_str_eq(u.sentinel_password, "x");
}

Test(url, sentinel_format) {
    char buf[600];
    jq_url_t u = parse_ok("redis+sentinel://al:pw@s1:1,[::1]:2/mm/4?sentinel_password=sp");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis+sentinel://al:***@s1:1,[::1]:2/mm/4?sentinel_password=***");
    jq_url_t v = parse_ok(buf);
    cr_expect_eq(v.nsentinels, 2);
    cr_expect_str_eq(v.master_name, "mm");
    cr_expect_eq(v.db, 4);
    u = parse_ok("redis+sentinel://s1/mm");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis+sentinel://s1:26379/mm");
}

Test(url, sentinel_errors) {
    expect_error("redis+sentinel://h", "master name missing");
    expect_error("redis+sentinel://h/", "master name missing");
    expect_error("redis+sentinel://h//2", "master name missing");
    expect_error("redis+sentinel:///m", "host is missing");
    expect_error("redis+sentinel://a,,b/m", "host is missing");
    expect_error("redis+sentinel://a,/m", "host is missing");
    expect_error("redis+sentinel://a:0/m", "port '0' is not in 1..65535");
    expect_error("redis+sentinel://a:x,b/m", "port 'x'");
    expect_error("redis+sentinel://a/m/x", "database 'x' is not a number");
    expect_error("redis+sentinel://a/m?db=1", "want ?sentinel_password=P");
    expect_error("redis+sentinel://1,2,3,4,5,6,7,8,9/m", "more than 8 sentinels");
    expect_error("redis+sentinel://[::1/m", "missing ']'");
    expect_error("rediss+sentinel://h", "master name missing");

    expect_error("sentinel://h/m",
                 "expected redis://, rediss://, redis+sentinel://, redis+cluster:// or unix://");
}

Test(url, sentinel_errors_hide_passwords) {
    jq_url_t u;
    char err[256] = "";
    cr_expect_eq(jq_url_parse("redis+sentinel://:secret1@h:99999/m?sentinel_password=secret2", &u,
                              err, sizeof(err)),
                 -1);
    cr_expect(strstr(err, "port '99999'"), "%s", err);
    cr_expect(!strstr(err, "secret"), "%s", err);
    cr_expect_eq(jq_url_parse("redis+sentinel://:secret1@h/m/x?sentinel_password=secret2", &u, err,
                              sizeof(err)),
                 -1);
    cr_expect(!strstr(err, "secret"), "%s", err);
    cr_expect(strstr(err, "sentinel_password=***"), "%s", err);
}

Test(url, sentinel_tls) {
    char buf[600];
    jq_url_t u = parse_ok("rediss+sentinel://:pw@s1,s2:26380/mm");
    cr_expect(u.tls);
    cr_expect(jq_url_sentinel(&u));
    cr_expect_eq(u.nsentinels, 2);
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "rediss+sentinel://:***@s1:26379,s2:26380/mm");
    u = parse_ok("redis+sentinel://s1/mm");
    cr_expect(!u.tls);
}
