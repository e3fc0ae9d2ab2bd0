/* Unit tests of common/dynlib.c (libraries opened on first use) and of
 * cryptosym.c, its libcrypto table. */

#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "cryptosym.h"
#include "dynlib.h"

typedef double (*cos_fn)(double);

Test(dynlib, a_missing_library_is_an_error_that_names_it) {
    void *h = NULL, *slot = NULL;
    const jq_dynlib_sym_t syms[] = {{"cos", &slot}};
    char err[256] = "";
    cr_assert_eq(jq_dynlib_load(&h, "libjobq-none.so.9", "test", syms, 1, err, sizeof err), -1);
    cr_expect_null(h);
    cr_expect(strstr(err, "test: cannot load libjobq-none.so.9: ") == err, "%s", err);
}

Test(dynlib, a_missing_symbol_is_an_error_and_loads_nothing) {
    void *h = NULL, *a = NULL, *b = NULL;
    const jq_dynlib_sym_t syms[] = {{"cos", &a}, {"jq_no_such_function", &b}};
    char err[256] = "";
    cr_assert_eq(jq_dynlib_load(&h, "libm.so.6", "test", syms, 2, err, sizeof err), -1);
    cr_expect_null(h);
    cr_expect_str_eq(err, "test: libm.so.6 has no jq_no_such_function");
}

Test(dynlib, loads_every_symbol_once) {
    void *h = NULL, *slot = NULL;
    const jq_dynlib_sym_t syms[] = {{"cos", &slot}};
    char err[256] = "";
    cr_assert_eq(jq_dynlib_load(&h, "libm.so.6", "test", syms, 1, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(h);
    cos_fn f = (cos_fn)slot;
    cr_expect_eq(f(0.0), 1.0);
    /* A second call with the handle set returns at once. */
    slot = NULL;
    cr_expect_eq(jq_dynlib_load(&h, "libm.so.6", "test", syms, 1, err, sizeof err), 0);
    cr_expect_null(slot);
}

static void *load_crypto(void *arg) {
    char err[256];
    *(int *)arg = jq_crypto_load(err, sizeof err);
    return NULL;
}

/* Pool threads race to the first sha256 job: every one gets the table. */
Test(dynlib, libcrypto_loads_from_racing_threads) {
    pthread_t th[4];
    int rc[4] = {-9, -9, -9, -9};
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, load_crypto, &rc[i]), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) cr_expect_eq(rc[i], 0);
    unsigned char md[32];
    unsigned int n = 0;
    cr_assert_eq(EVP_Digest("abc", 3, md, &n, EVP_sha256(), NULL), 1);
    cr_expect_eq(n, 32);
    /* FIPS 180-2's first example, compared whole with plain memcmp; then
     * CRYPTO_memcmp through the table must agree on it, and see a change in
     * the last byte (a constant-time compare that always said "equal" would
     * pass a comparison of md with itself). */
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                          0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                          0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                          0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    cr_expect_eq(memcmp(md, abc, 32), 0);
    cr_expect_eq(CRYPTO_memcmp(md, abc, 32), 0);
    unsigned char other[32];
    memcpy(other, abc, 32);
    other[31] ^= 1;
    cr_expect_neq(CRYPTO_memcmp(md, other, 32), 0);
}
