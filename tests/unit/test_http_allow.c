/* Tests of consumer/handlers/http_allow.c: URLs are matched part by part after
 * curl's parsing, and the classic escapes are refused. */

#include <criterion/criterion.h>
#include <string.h>

#include "http_allow.h"

static jq_http_allow_t a;
static char err[256];

static void setup(void) {
    cr_assert_eq(jq_curl_load(err, sizeof err), 0, "%s", err);
    memset(&a, 0, sizeof a);
    cr_assert_eq(jq_http_allow_add(&a, "http://127.0.0.1:8080/api/", err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(jq_http_allow_add(&a, "https://Example.COM/v1", err, sizeof err), 0, "%s", err);
}

static int ok(const char *url) {
    CURLU *u = NULL;
    err[0] = '\0';
    int rc = jq_http_allow_check(&a, url, strlen(url), &u, err, sizeof err);
    cr_assert((rc == 0) == (u != NULL));
    curl_url_cleanup(u);
    return rc == 0;
}

Test(http_allow, allowed, .init = setup) {
    cr_expect(ok("http://127.0.0.1:8080/api/"));
    cr_expect(ok("http://127.0.0.1:8080/api/x/y?q=1&r=%2F"), "%s", err);
    cr_expect(ok("HTTP://127.0.0.1:8080/api/x"), "%s", err);
    cr_expect(ok("https://example.com/v1"), "%s", err);
    cr_expect(ok("https://EXAMPLE.com:443/v1/users"), "%s", err);
    cr_expect(ok("http://127.0.0.1:8080/api/a/../b"), "%s", err); /* = /api/b */
}

Test(http_allow, other_place, .init = setup) {
    cr_expect(!ok("http://127.0.0.1:8081/api/x"));
    cr_expect_str_eq(err, "not under any --http-allow prefix");
    cr_expect(!ok("http://127.0.0.2:8080/api/x"));
    cr_expect(!ok("https://127.0.0.1:8080/api/x"));
    cr_expect(!ok("http://127.0.0.1:8080/apix"));
    cr_expect(!ok("http://127.0.0.1:8080/"));
    cr_expect(!ok("https://example.com/v10"));
    cr_expect(!ok("http://example.com/v1"));
    cr_expect(!ok("https://example.com.evil/v1"));
}

Test(http_allow, userinfo, .init = setup) {
    cr_expect(!ok("http://127.0.0.1:8080@evil/api/x"));
    cr_expect(strstr(err, "userinfo") != NULL, "%s", err);
    cr_expect(!ok("http://user@127.0.0.1:8080/api/x"));
    cr_expect(!ok("http://u:p@127.0.0.1:8080/api/x"));
    cr_expect(!ok("https://example.com:443@evil.com/v1"));
}

Test(http_allow, dot_segments_and_encodings, .init = setup) {
    cr_expect(!ok("http://127.0.0.1:8080/api/../secret"));
    cr_expect(!ok("http://127.0.0.1:8080/api/..%2Fsecret"));
    cr_expect(strstr(err, "encoded") != NULL, "%s", err);
    cr_expect(!ok("http://127.0.0.1:8080/api/%2e%2e/secret"));
    cr_expect(!ok("http://127.0.0.1:8080/api/%2E./secret"));
    cr_expect(!ok("http://127.0.0.1:8080/api/x%5c..%5csecret"));
    cr_expect(!ok("http://127.0.0.1:8080/api\\..\\secret"));
    cr_expect(!ok("http://127.0.0.1:8080/api/x%00"));
}

Test(http_allow, schemes_and_junk, .init = setup) {
    cr_expect(!ok("file:///etc/passwd"));
    cr_expect(!ok("ftp://127.0.0.1:8080/api/"));
    cr_expect(!ok("gopher://127.0.0.1:8080/api/"));
    cr_expect(!ok("//127.0.0.1:8080/api/"));
    cr_expect(!ok("127.0.0.1:8080/api/"));
    cr_expect(!ok("http://127.0.0.1:8080/api/ x"));
    cr_expect(!ok(""));
    /* IPv4 in other spellings is normalised by curl: still the same host. */
    cr_expect(ok("http://127.1:8080/api/x"), "%s", err);
    cr_expect(!ok("http://2130706434:8080/api/x")); /* 127.0.0.2 */
}

Test(http_allow, bad_prefixes) {
    jq_http_allow_t b;
    cr_assert_eq(jq_curl_load(err, sizeof err), 0, "%s", err);
    memset(&b, 0, sizeof b);
    cr_expect_eq(jq_http_allow_add(&b, "http://u@127.0.0.1/", err, sizeof err), -1);
    cr_expect_eq(jq_http_allow_add(&b, "http://127.0.0.1/?q", err, sizeof err), -1);
    cr_expect(strstr(err, "no query") != NULL, "%s", err);
    cr_expect_eq(jq_http_allow_add(&b, "ftp://127.0.0.1/", err, sizeof err), -1);
    cr_expect_eq(jq_http_allow_add(&b, "not a url", err, sizeof err), -1);
    cr_expect_eq(b.n, 0);
}
