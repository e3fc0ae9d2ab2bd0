#ifndef JQ_CRYPTOSYM_H
#define JQ_CRYPTOSYM_H

/* OpenSSL's libcrypto, loaded with dlopen (dynlib.h) at its first use: the
 * first sha256 job in a worker, the dashboard's admin token in the master.
 * Linked, it cost every idle worker 3.4 MiB of RSS (mapped, relocated and
 * touched at start) that a worker running no sha256 job never needs.
 * Include this instead of <openssl/evp.h>, and after any other OpenSSL
 * header: the names below become calls through the table that
 * jq_crypto_load() fills. */

#include <stddef.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* One symbol list, laid out by hand (clang-format re-wraps it anew each run). */
/* clang-format off */
#define JQ_CRYPTO_SYMS(X) \
    X(CRYPTO_memcmp) X(EVP_Digest) X(EVP_DigestFinal_ex) X(EVP_DigestInit_ex) \
    X(EVP_DigestUpdate) X(EVP_MD_CTX_free) X(EVP_MD_CTX_new) X(EVP_MD_fetch) \
    X(EVP_sha256)
/* clang-format on */

#define JQ_CRYPTO_FIELD(n) __typeof__(n) *n;
typedef struct jq_crypto {
    JQ_CRYPTO_SYMS(JQ_CRYPTO_FIELD)
} jq_crypto_t;
#undef JQ_CRYPTO_FIELD

extern jq_crypto_t jq_crypto;

/* Loads libcrypto.so.3 and every symbol above, once per process (later
 * calls return 0 at once). Returns 0, or -1 with err, e.g. "libcrypto:
 * cannot load libcrypto.so.3: <dlerror>". Thread-safe: pool threads may
 * race to the first sha256 job. */
int jq_crypto_load(char *err, size_t errlen);

/* A macro's own name is not expanded again inside it, so each stays a
 * plain member name there. cryptosym.c, which names the members in its
 * table, goes without them. */
#ifndef JQ_CRYPTO_NO_NAMES
#define CRYPTO_memcmp (jq_crypto.CRYPTO_memcmp)
#define EVP_Digest (jq_crypto.EVP_Digest)
#define EVP_DigestFinal_ex (jq_crypto.EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (jq_crypto.EVP_DigestInit_ex)
#define EVP_DigestUpdate (jq_crypto.EVP_DigestUpdate)
#define EVP_MD_CTX_free (jq_crypto.EVP_MD_CTX_free)
#define EVP_MD_CTX_new (jq_crypto.EVP_MD_CTX_new)
#define EVP_MD_fetch (jq_crypto.EVP_MD_fetch)
#define EVP_sha256 (jq_crypto.EVP_sha256)
#endif

#endif
