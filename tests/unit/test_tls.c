/* Unit tests of common/tls.c: the --redis-tls-* options made into a
 * client's settings, and the context's refusals at start, each naming the
 * file or the reason and never a byte of a key. The sessions themselves are
 * tested against a real redis-server (tests/integration/test_tls.py). */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"
#include "url.h"

static char dir[] = "/tmp/jobq-test-tls-XXXXXX";

/* A key and a self-signed certificate named name.key, name.crt in dir. */
static void make_pair(const char *name) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout %s.key -out %s.crt -days 1 -subj /CN=%s >/dev/null 2>&1",
             dir, name, name, name);
    cr_assert_eq(system(cmd), 0, "openssl failed: %s", cmd);
}

static const char *path(const char *name) {
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static void setup(void) {
    cr_assert_not_null(mkdtemp(dir));
    make_pair("a");
    make_pair("b");
    FILE *f = fopen(path("junk.pem"), "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
}

static void teardown(void) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static void expect_refused(const jq_client_tls_t *cfg, const char *want) {
    char err[512] = "";
    jq_tls_t *t = jq_tls_new(cfg, err, sizeof(err));
    cr_expect_null(t, "accepted; want '%s'", want);
    jq_tls_free(t);
    cr_expect(strstr(err, want) != NULL, "error '%s', want '%s'", err, want);
    cr_expect_null(strstr(err, "SECRET"), "key material in '%s'", err);
}

TestSuite(tls, .init = setup, .fini = teardown);

Test(tls, options_need_a_rediss_url_and_empty_ones_are_unset) {
    jq_url_t plain, tls;
    char err[256] = "";
    cr_assert_eq(jq_url_parse("redis://h", &plain, err, sizeof(err)), 0);
    cr_assert_eq(jq_url_parse("rediss://h", &tls, err, sizeof(err)), 0);
    jq_tls_opts_t o;
    memset(&o, 0, sizeof(o));
    jq_client_tls_t c;
    cr_expect_eq(jq_tls_opts_settings(&o, &plain, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_null(c.ca_file);
    cr_expect_null(c.server_name);
    snprintf(o.ca, sizeof(o.ca), "/etc/ca.pem");
    cr_expect_eq(jq_tls_opts_settings(&o, &plain, &c, err, sizeof(err)), -1);
    cr_expect(strstr(err, "need a rediss:// URL") != NULL, "%s", err);
    cr_expect_eq(jq_tls_opts_settings(&o, &tls, &c, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(c.ca_file, "/etc/ca.pem");
    cr_expect_null(c.cert_file);
    cr_expect_null(c.key_file);
    cr_expect_eq(c.insecure, 0);
}

Test(tls, the_defaults_and_a_good_pair_make_a_context) {
    char err[256] = "";
    jq_tls_t *t = jq_tls_new(NULL, err, sizeof(err));
    cr_assert_not_null(t, "%s", err);
    cr_expect_str_eq(jq_tls_server_name(t, "cache.example.com"), "cache.example.com");
    jq_tls_free(t);
    jq_client_tls_t cfg = {.ca_file = path("a.crt"),
                           .cert_file = path("a.crt"),
                           .key_file = path("a.key"),
                           .server_name = "redis.internal"};
    t = jq_tls_new(&cfg, err, sizeof(err));
    cr_assert_not_null(t, "%s", err);
    cr_expect_str_eq(jq_tls_server_name(t, "10.0.0.5"), "redis.internal");
    jq_tls_free(t);
    jq_tls_free(NULL);
}

Test(tls, a_missing_or_unusable_file_is_named) {
    jq_client_tls_t cfg = {.ca_file = path("none.crt")};
    expect_refused(&cfg, "cannot read the CA file '/tmp/jobq-test-tls-");
    expect_refused(&cfg, "none.crt': No such file or directory");
    cfg.ca_file = path("junk.pem");
    expect_refused(&cfg, "holds no usable certificate");
    cfg = (jq_client_tls_t){.cert_file = path("a.crt"), .key_file = path("none.key")};
    expect_refused(&cfg, "cannot read the key file");
    cfg.key_file = path("junk.pem");
    expect_refused(&cfg, "holds no usable private key");
}

Test(tls, a_certificate_needs_its_own_key) {
    jq_client_tls_t cfg = {.cert_file = path("a.crt")};
    expect_refused(&cfg, "a client certificate needs its key");
    cfg = (jq_client_tls_t){.key_file = path("a.key")};
    expect_refused(&cfg, "a client certificate needs its key");
    cfg = (jq_client_tls_t){.cert_file = path("a.crt"), .key_file = path("b.key")};
    expect_refused(&cfg, "b.key' is not the key of the certificate");
}
