/* See tls.h. OpenSSL's calls go through a table that jq_tls_new fills
 * with dlopen (dynlib.h): the macros below send each name used here
 * through it, macros of OpenSSL's own (SSL_CTX_set_mode is SSL_CTX_ctrl)
 * included. */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dynlib.h"
#include "tls.h"

/* One symbol list, laid out by hand (clang-format re-wraps it anew each run).
 * The libcrypto ones are found through libssl, which links it. */
/* clang-format off */
#define JQ_SSL_SYMS(X) \
    X(TLS_client_method) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_ctrl) \
    X(SSL_CTX_set_verify) X(SSL_CTX_set_default_verify_paths) \
    X(SSL_CTX_load_verify_locations) X(SSL_CTX_use_certificate_chain_file) \
    X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_check_private_key) \
    X(SSL_CTX_set_default_passwd_cb) X(SSL_new) X(SSL_free) X(SSL_set_fd) X(SSL_ctrl) \
    X(SSL_set1_host) X(SSL_get0_param) X(SSL_connect) X(SSL_read) X(SSL_write) \
    X(SSL_get_error) X(SSL_get_verify_result) X(SSL_has_pending) \
    X(ERR_get_error) X(ERR_peek_last_error) X(ERR_clear_error) X(ERR_reason_error_string) \
    X(X509_verify_cert_error_string) X(X509_VERIFY_PARAM_set1_ip_asc)
/* clang-format on */

#define JQ_SSL_FIELD(n) __typeof__(n) *n;
static struct { JQ_SSL_SYMS(JQ_SSL_FIELD) } ssl;
#undef JQ_SSL_FIELD

static int load(char *err, size_t errlen) {
    static void *lib;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
#define JQ_SSL_SYM(n) JQ_DYNLIB_SYM(ssl, "", n)
    static const jq_dynlib_sym_t syms[] = {JQ_SSL_SYMS(JQ_SSL_SYM)};
#undef JQ_SSL_SYM
    pthread_mutex_lock(&lock);
    int rc =
        jq_dynlib_load(&lib, "libssl.so.3", "TLS", syms, sizeof syms / sizeof syms[0], err, errlen);
    pthread_mutex_unlock(&lock);
    return rc;
}

/* From here on, OpenSSL's names are calls through the table. */
#define TLS_client_method (ssl.TLS_client_method)
#define SSL_CTX_new (ssl.SSL_CTX_new)
#define SSL_CTX_free (ssl.SSL_CTX_free)
#define SSL_CTX_ctrl (ssl.SSL_CTX_ctrl)
#define SSL_CTX_set_verify (ssl.SSL_CTX_set_verify)
#define SSL_CTX_set_default_verify_paths (ssl.SSL_CTX_set_default_verify_paths)
#define SSL_CTX_load_verify_locations (ssl.SSL_CTX_load_verify_locations)
#define SSL_CTX_use_certificate_chain_file (ssl.SSL_CTX_use_certificate_chain_file)
#define SSL_CTX_use_PrivateKey_file (ssl.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_check_private_key (ssl.SSL_CTX_check_private_key)
#define SSL_CTX_set_default_passwd_cb (ssl.SSL_CTX_set_default_passwd_cb)
#define SSL_new (ssl.SSL_new)
#define SSL_free (ssl.SSL_free)
#define SSL_set_fd (ssl.SSL_set_fd)
#define SSL_ctrl (ssl.SSL_ctrl)
#define SSL_set1_host (ssl.SSL_set1_host)
#define SSL_get0_param (ssl.SSL_get0_param)
#define SSL_connect (ssl.SSL_connect)
#define SSL_read (ssl.SSL_read)
#define SSL_write (ssl.SSL_write)
#define SSL_get_error (ssl.SSL_get_error)
#define SSL_get_verify_result (ssl.SSL_get_verify_result)
#define SSL_has_pending (ssl.SSL_has_pending)
#define ERR_get_error (ssl.ERR_get_error)
#define ERR_peek_last_error (ssl.ERR_peek_last_error)
#define ERR_clear_error (ssl.ERR_clear_error)
#define ERR_reason_error_string (ssl.ERR_reason_error_string)
#define X509_verify_cert_error_string (ssl.X509_verify_cert_error_string)
#define X509_VERIFY_PARAM_set1_ip_asc (ssl.X509_VERIFY_PARAM_set1_ip_asc)

struct jq_tls {
    SSL_CTX *ctx;
    int verify;
    char server_name[256]; /* "" : each connection's host */
};

struct jq_tls_conn {
    SSL *ssl;
    int verify;
    char name[256]; /* the name checked, for messages */
};

/* OpenSSL's reason for the last error of this thread, or fallback. */
static const char *reason(const char *fallback) {
    unsigned long e = ERR_get_error(), last = e;
    while (e) { /* the last one queued is the closest to the cause */
        last = e;
        e = ERR_get_error();
    }
    const char *r = last ? ERR_reason_error_string(last) : NULL;
    return r ? r : fallback;
}

/* A key file with a passphrase would make OpenSSL prompt on the terminal
 * (a service has none): no passphrase, so such a key fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) { return -1; }

/* A file named by an option: readable, or err says why. */
static int readable(const char *what, const char *path, char *err, size_t errlen) {
    if (access(path, R_OK) == 0) return 0;
    snprintf(err, errlen, "TLS: cannot read the %s '%s': %s", what, path, strerror(errno));
    return -1;
}

static int load_files(jq_tls_t *t, const jq_client_tls_t *cfg, char *err, size_t errlen) {
    const char *ca = cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL;
    const char *cert = cfg->cert_file && *cfg->cert_file ? cfg->cert_file : NULL;
    const char *key = cfg->key_file && *cfg->key_file ? cfg->key_file : NULL;
    if ((cert != NULL) != (key != NULL)) {
        snprintf(err, errlen,
                 "TLS: a client certificate needs its key, and a key its certificate "
                 "(--redis-tls-cert with --redis-tls-key)");
        return -1;
    }
    if (ca) {
        if (readable("CA file", ca, err, errlen) < 0) return -1;
        if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
            snprintf(err, errlen, "TLS: the CA file '%s' holds no usable certificate: %s", ca,
                     reason("unknown error"));
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        snprintf(err, errlen, "TLS: cannot load the system's CA store: %s",
                 reason("unknown error"));
        return -1;
    }
    if (!cert) return 0;
    if (readable("certificate file", cert, err, errlen) < 0 ||
        readable("key file", key, err, errlen) < 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
        snprintf(err, errlen, "TLS: the certificate file '%s' holds no usable certificate: %s",
                 cert, reason("unknown error"));
        return -1;
    }
    /* reason() would be OpenSSL's words about the key's contents: name
     * the file only. OpenSSL checks the key against the certificate as it
     * loads it, and once more below. */
    int loaded = SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) == 1;
    unsigned long e = loaded ? 0 : ERR_peek_last_error();
    int mismatch =
        loaded ? SSL_CTX_check_private_key(t->ctx) != 1
               : ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
    ERR_clear_error();
    if (mismatch)
        snprintf(err, errlen, "TLS: the key file '%s' is not the key of the certificate '%s'", key,
                 cert);
    else if (!loaded)
        snprintf(err, errlen,
                 "TLS: the key file '%s' holds no usable private key (PEM, not encrypted)", key);
    return loaded && !mismatch ? 0 : -1;
}

jq_tls_t *jq_tls_new(const jq_client_tls_t *cfg, char *err, size_t errlen) {
    static const jq_client_tls_t defaults;
    if (!cfg) cfg = &defaults;
    if (load(err, errlen) < 0) return NULL;
    jq_tls_t *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "TLS: out of memory");
        return NULL;
    }
    if (cfg->server_name && snprintf(t->server_name, sizeof(t->server_name), "%s",
                                     cfg->server_name) >= (int)sizeof(t->server_name)) {
        snprintf(err, errlen, "TLS: the server name is too long");
        goto err;
    }
    ERR_clear_error();
    if (!(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "TLS: cannot make a context: %s", reason("out of memory"));
        goto err;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Writes take what the socket takes (a partial write is the rest
     * left in hiredis' buffer, which may move as commands are added). */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Without read-ahead every record costs two recv calls (its header,
     * then its body); with it, one fills OpenSSL's buffer with what is
     * there, which jq_tls_pending then counts. */
    SSL_CTX_set_read_ahead(t->ctx, 1);
    t->verify = !cfg->insecure;
    SSL_CTX_set_verify(t->ctx, t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_default_passwd_cb(t->ctx, no_passphrase);
    if (load_files(t, cfg, err, errlen) < 0) goto err;
    return t;
err:
    jq_tls_free(t);
    return NULL;
}

void jq_tls_free(jq_tls_t *t) {
    if (!t) return;
    if (t->ctx) SSL_CTX_free(t->ctx);
    free(t);
}

const char *jq_tls_server_name(const jq_tls_t *t, const char *host) {
    return t->server_name[0] ? t->server_name : host;
}

jq_tls_conn_t *jq_tls_conn_new(jq_tls_t *t, int fd, const char *host, char *err, size_t errlen) {
    jq_tls_conn_t *c = calloc(1, sizeof(*c));
    if (!c) goto oom;
    c->verify = t->verify;
    snprintf(c->name, sizeof(c->name), "%s", jq_tls_server_name(t, host));
    ERR_clear_error();
    if (!(c->ssl = SSL_new(t->ctx)) || SSL_set_fd(c->ssl, fd) != 1) goto oom;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, c->name, ip) == 1 || inet_pton(AF_INET6, c->name, ip) == 1;
    /* An address is checked against the certificate's IP entries and is
     * no SNI (RFC 6066 allows names only). */
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->name) != 1
              : (SSL_set_tlsext_host_name(c->ssl, c->name) != 1 ||
                 SSL_set1_host(c->ssl, c->name) != 1))
        goto oom;
    return c;
oom:
    snprintf(err, errlen, "TLS: cannot start a session: %s", reason("out of memory"));
    jq_tls_conn_free(c);
    return NULL;
}

void jq_tls_conn_free(jq_tls_conn_t *c) {
    if (!c) return;
    if (c->ssl) SSL_free(c->ssl);
    free(c);
}

/* The outcome of a call that returned rc <= 0, as tls.h says. */
static int outcome(jq_tls_conn_t *c, int rc, const char *during, char *err, size_t errlen) {
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) return JQ_TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE) return JQ_TLS_WANT_WRITE;
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(err, errlen, "TLS: the server closed the connection");
        return 0;
    }
    if (e == SSL_ERROR_SYSCALL) {
        int sys = errno;
        unsigned long q = ERR_get_error();
        snprintf(err, errlen, "TLS %s: %s", during,
                 q ? ERR_reason_error_string(q)
                   : (rc == 0 || sys == 0 ? "the server closed the connection" : strerror(sys)));
        ERR_clear_error();
        return -1;
    }
    long v = c->verify ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        ERR_clear_error();
        int n = snprintf(err, errlen, "certificate verify failed: %s",
                         X509_verify_cert_error_string(v));
        if ((v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) && n > 0 &&
            (size_t)n < errlen)
            snprintf(err + n, errlen - (size_t)n,
                     " (the name checked was '%s'; see --redis-tls-server-name)", c->name);
        return JQ_TLS_REFUSED;
    }
    unsigned long q = 0, last;
    while ((last = ERR_get_error()) != 0) q = last;
    const char *r = q ? ERR_reason_error_string(q) : NULL;
    /* An alert the server sent: it refused us (our certificate, or none). */
    if (q && ERR_GET_LIB(q) == ERR_LIB_SSL && ERR_GET_REASON(q) >= SSL_AD_REASON_OFFSET) {
        snprintf(err, errlen, "the server refused the TLS session: %s", r ? r : "alert");
        return JQ_TLS_REFUSED;
    }
    snprintf(err, errlen, "TLS %s failed: %s", during, r ? r : "unknown error");
    return -1;
}

int jq_tls_handshake(jq_tls_conn_t *c, char *err, size_t errlen) {
    ERR_clear_error();
    int rc = SSL_connect(c->ssl);
    if (rc == 1) return 0;
    rc = outcome(c, rc, "handshake", err, errlen);
    return rc == 0 ? -1 : rc; /* a close in the handshake is a failure */
}

ssize_t jq_tls_read(jq_tls_conn_t *c, void *buf, size_t n, char *err, size_t errlen) {
    ERR_clear_error();
    int rc = SSL_read(c->ssl, buf, n > (size_t)INT32_MAX ? INT32_MAX : (int)n);
    return rc > 0 ? rc : outcome(c, rc, "read", err, errlen);
}

ssize_t jq_tls_write(jq_tls_conn_t *c, const void *buf, size_t n, char *err, size_t errlen) {
    ERR_clear_error();
    int rc = SSL_write(c->ssl, buf, n > (size_t)INT32_MAX ? INT32_MAX : (int)n);
    if (rc > 0) return rc;
    rc = outcome(c, rc, "write", err, errlen);
    return rc == 0 ? -1 : rc;
}

int jq_tls_pending(const jq_tls_conn_t *c) { return SSL_has_pending(c->ssl); }

/* Records of at most 16 KiB go out one per call (partial writes on): the
 * offset moves along obuf, and obuf is cut once per call of ours, not per
 * record (a multi-MiB payload would be moved again for each). */
int jq_tls_flush(jq_tls_conn_t *t, struct redisContext *c, char *err, size_t errlen) {
    size_t len = sdslen(c->obuf), at = 0;
    int rc = 0;
    while (at < len) {
        ssize_t n = jq_tls_write(t, c->obuf + at, len - at, err, errlen);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        at += (size_t)n;
    }
    if (at == len)
        sdsclear(c->obuf);
    else if (at > 0)
        sdsrange(c->obuf, (ssize_t)at, -1);
    return rc;
}

int jq_tls_opts_settings(const jq_tls_opts_t *o, const jq_url_t *u, jq_client_tls_t *out, char *err,
                         size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->ca_file = o->ca[0] ? o->ca : NULL;
    out->cert_file = o->cert[0] ? o->cert : NULL;
    out->key_file = o->key[0] ? o->key : NULL;
    out->server_name = o->server_name[0] ? o->server_name : NULL;
    out->insecure = o->insecure;
    int any = out->ca_file || out->cert_file || out->key_file || out->server_name || o->insecure;
    /* Settings meant for TLS on a plain URL: the user believes the traffic
     * is encrypted, and it would not be. */
    if (any && !u->tls) {
        snprintf(err, errlen, "--redis-tls-* options need a rediss:// URL (--redis)");
        return -1;
    }
    return 0;
}

jq_tls_conn_t *jq_tls_sync_start(jq_tls_t *t, struct redisContext *ctx, const char *host, char *err,
                                 size_t errlen) {
    jq_tls_conn_t *s = jq_tls_conn_new(t, ctx->fd, host, err, errlen);
    if (!s) return NULL;
    /* On a blocking socket a WANT_* means its timeout passed. */
    int rc = jq_tls_handshake(s, err, errlen);
    if (rc == 0) return s;
    if (rc == JQ_TLS_WANT_READ || rc == JQ_TLS_WANT_WRITE)
        snprintf(err, errlen, "no TLS handshake within the connect timeout");
    jq_tls_conn_free(s);
    return NULL;
}

/* Marks ctx broken, with why, as hiredis' own I/O errors do. */
static int io_error(redisContext *ctx, const char *why) {
    ctx->err = REDIS_ERR_IO;
    snprintf(ctx->errstr, sizeof(ctx->errstr), "%.*s", (int)sizeof(ctx->errstr) - 1, why);
    return REDIS_ERR;
}

int jq_tls_sync_reply(jq_tls_conn_t *s, struct redisContext *ctx, void **reply) {
    char why[256], buf[64 * 1024];
    *reply = NULL;
    if (redisGetReplyFromReader(ctx, reply) != REDIS_OK) return REDIS_ERR;
    if (*reply) return REDIS_OK;
    int rc = jq_tls_flush(s, ctx, why, sizeof(why));
    if (rc == JQ_TLS_WANT_READ || rc == JQ_TLS_WANT_WRITE) return io_error(ctx, "write timed out");
    /* A server refusing our certificate (TLS 1.3: after our side of the
     * handshake ended) may have reset the connection under our first
     * write: its alert may still be there to read. */
    if (rc < 0 && jq_tls_read(s, buf, sizeof(buf), why, sizeof(why)) >= 0)
        return io_error(ctx, "the server closed the connection");
    if (rc < 0) return io_error(ctx, why);
    while (!*reply) {
        ssize_t n = jq_tls_read(s, buf, sizeof(buf), why, sizeof(why));
        if (n == JQ_TLS_WANT_READ || n == JQ_TLS_WANT_WRITE) return io_error(ctx, "read timed out");
        if (n <= 0) return io_error(ctx, why);
        if (redisReaderFeed(ctx->reader, buf, (size_t)n) != REDIS_OK ||
            redisGetReplyFromReader(ctx, reply) != REDIS_OK)
            return io_error(ctx, ctx->reader->errstr[0] ? ctx->reader->errstr : "protocol error");
    }
    return REDIS_OK;
}
