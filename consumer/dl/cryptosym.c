/* See cryptosym.h. */

#include <pthread.h>
#include <stdio.h>

#define JQ_CRYPTO_NO_NAMES
#include "cryptosym.h"
#include "dynlib.h"

jq_crypto_t jq_crypto;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int jq_crypto_load(char *err, size_t errlen) {
    /* Set last, under the lock: a caller that sees it sees the table. */
    static void *_Atomic lib;
    if (lib != NULL) return 0;
#define JQ_CRYPTO_SYM(n) JQ_DYNLIB_SYM(jq_crypto, "", n)
    static const jq_dynlib_sym_t syms[] = {JQ_CRYPTO_SYMS(JQ_CRYPTO_SYM)};
#undef JQ_CRYPTO_SYM
    pthread_mutex_lock(&load_lock);
    void *so = lib;
    int rc = jq_dynlib_load(&so, "libcrypto.so.3", "libcrypto", syms, sizeof syms / sizeof syms[0],
                            err, errlen);
    lib = so;
    pthread_mutex_unlock(&load_lock);
    return rc;
}
