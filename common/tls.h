#ifndef JQ_TLS_H
#define JQ_TLS_H

/* TLS to Redis (rediss://) through OpenSSL, for the consumer's event loop
 * and libjobq's blocking client alike: a jq_tls_t is the settings made
 * into an SSL_CTX once (files read, verification on), a jq_tls_conn_t one
 * connection's session over a socket the caller connected and owns.
 * hiredis stays the reader and the command formatter; the caller moves the
 * bytes through jq_tls_read/jq_tls_write instead of the socket.
 *
 * libssl is opened with dlopen at the first jq_tls_new, not linked: linked,
 * libssl and the libcrypto it pulls in are mapped, relocated and partly
 * touched in every process at start (libcrypto alone was 3.4 MiB of an idle
 * worker's RSS, consumer/dl/cryptosym.h), and a worker on plain TCP never
 * uses them. So only a rediss:// user pays, and libjobq's users as well.
 *
 * On a non-blocking socket the calls return JQ_TLS_WANT_READ or
 * JQ_TLS_WANT_WRITE: call again with the same arguments once the socket is
 * readable (writable). On a blocking one with SO_RCVTIMEO/SO_SNDTIMEO,
 * those mean the timeout passed. */

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "jobq/jobq.h" /* jq_client_tls_t: the settings */
#include "url.h"

#define JQ_TLS_WANT_READ (-2)
#define JQ_TLS_WANT_WRITE (-3)
/* The server's certificate did not verify (wrong CA, expired, another
 * name), or the server refused ours: a configuration error, not an
 * outage. */
#define JQ_TLS_REFUSED (-4)

typedef struct jq_tls jq_tls_t;
typedef struct jq_tls_conn jq_tls_conn_t;

/* The --redis-tls-* options, the same in jobq-consumer and jobq: a
 * jq_tls_opts_t field of the program's options, and JQ_TLS_OPT_ROWS(type,
 * field) in its option table. Empty strings are unset. */
typedef struct jq_tls_opts {
    char ca[1024];
    char cert[1024];
    char key[1024];
    char server_name[256];
    int insecure;
} jq_tls_opts_t;

#define JQ_TLS_OPT_ROW(T, f, name, env, type, def, help)                                           \
    { name, env, type, def, 0, 1, offsetof(T, f), sizeof(((T *)0)->f), help }
#define JQ_TLS_OPT_ROWS(T, f)                                                                      \
    JQ_TLS_OPT_ROW(T, f.ca, "redis-tls-ca", "JOBQ_REDIS_TLS_CA", JQ_OPT_STR, "",                   \
                   "rediss://: trust the CA certificates in this PEM file (empty: the "            \
                   "system's CA store)"),                                                          \
        JQ_TLS_OPT_ROW(T, f.cert, "redis-tls-cert", "JOBQ_REDIS_TLS_CERT", JQ_OPT_STR, "",         \
                       "rediss://: our client certificate (PEM), for a server that checks "        \
                       "clients; with --redis-tls-key"),                                           \
        JQ_TLS_OPT_ROW(T, f.key, "redis-tls-key", "JOBQ_REDIS_TLS_KEY", JQ_OPT_STR, "",            \
                       "rediss://: the client certificate's private key (PEM, not encrypted)"),    \
        JQ_TLS_OPT_ROW(T, f.server_name, "redis-tls-server-name", "JOBQ_REDIS_TLS_SERVER_NAME",    \
                       JQ_OPT_STR, "",                                                             \
                       "rediss://: the name the server's certificate must carry, sent as SNI "     \
                       "(empty: the URL's host)"),                                                 \
        JQ_TLS_OPT_ROW(T, f.insecure, "redis-tls-insecure", "JOBQ_REDIS_TLS_INSECURE",             \
                       JQ_OPT_BOOL, "0",                                                           \
                       "rediss://: do NOT verify the server's certificate (tests only; warned "    \
                       "at every start)")

/* The options o as the settings of a client (pointers into o), checked
 * against u: they need a rediss:// URL. Returns 0, or -1 with err. */
int jq_tls_opts_settings(const jq_tls_opts_t *o, const jq_url_t *u, jq_client_tls_t *out, char *err,
                         size_t errlen);

/* The warning --redis-tls-insecure logs at every start. */
#define JQ_TLS_INSECURE_WARNING                                                                    \
    "--redis-tls-insecure: the Redis server's certificate is NOT verified: anyone on the "         \
    "path can read and change the traffic, passwords included"

/* Loads libssl (once per process, thread-safe) and builds the context of
 * cfg (NULL: the defaults): TLS 1.2 or newer, the peer verified against
 * cfg->ca_file or the system's store unless cfg->insecure, the client
 * certificate and key if given. cfg's strings are copied. Returns the
 * context, freed with jq_tls_free, or NULL with err naming the file or the
 * reason, e.g. "TLS: cannot read the CA file '/x.pem': No such file or
 * directory". */
jq_tls_t *jq_tls_new(const jq_client_tls_t *cfg, char *err, size_t errlen);
void jq_tls_free(jq_tls_t *t);

/* The name checked for a connection to host: --redis-tls-server-name when
 * set, else host. Borrowed from t or host. */
const char *jq_tls_server_name(const jq_tls_t *t, const char *host);

/* A session over the connected socket fd (not closed by jq_tls_conn_free),
 * checking the server's certificate under jq_tls_server_name(t, host)
 * (an IP address is checked as one, and sent as no SNI). t must outlive
 * it. Returns NULL with err when out of memory. */
jq_tls_conn_t *jq_tls_conn_new(jq_tls_t *t, int fd, const char *host, char *err, size_t errlen);
void jq_tls_conn_free(jq_tls_conn_t *c);

/* Advances the handshake. Returns 0 once done, JQ_TLS_WANT_*, or
 * JQ_TLS_REFUSED / -1 with err: "certificate verify failed: certificate
 * has expired", "the server refused our certificate: ..." / "TLS
 * handshake failed: wrong version number". */
int jq_tls_handshake(jq_tls_conn_t *c, char *err, size_t errlen);

/* Reads up to n bytes. Returns their count (> 0), JQ_TLS_WANT_*, 0 when
 * the server closed the connection, or -1 (JQ_TLS_REFUSED for a fatal
 * alert of the server's, like a client certificate it wants) with err.
 * Bytes OpenSSL already holds do not make the socket readable: read until
 * JQ_TLS_WANT_READ. */
ssize_t jq_tls_read(jq_tls_conn_t *c, void *buf, size_t n, char *err, size_t errlen);

/* Writes some of buf[0..n) (n > 0): returns the count written (> 0, at
 * least one record's worth), JQ_TLS_WANT_*, or -1 with err. After a
 * JQ_TLS_WANT_*, call again with the same bytes first in buf (the buffer
 * may have moved) and n no smaller. */
ssize_t jq_tls_write(jq_tls_conn_t *c, const void *buf, size_t n, char *err, size_t errlen);

/* True when OpenSSL holds bytes read from the socket and not yet returned
 * by jq_tls_read: the socket will not poll readable for them. */
int jq_tls_pending(const jq_tls_conn_t *c);

/* Writes hiredis' output buffer c->obuf through the session, dropping what
 * went out: returns 0 once it is empty, JQ_TLS_WANT_* with the rest left
 * in it, or -1 with err. */
struct redisContext;
int jq_tls_flush(jq_tls_conn_t *t, struct redisContext *c, char *err, size_t errlen);

/* Blocking use (libjobq, a sentinel's question): a hiredis sync context
 * whose socket is connected, with SO_RCVTIMEO/SO_SNDTIMEO set
 * (redisSetTimeout): the handshake on it, under the name
 * jq_tls_server_name(t, host). Returns the session (jq_tls_conn_free), or
 * NULL with err: a verify failure's reason, or "no TLS handshake within
 * the connect timeout". */
jq_tls_conn_t *jq_tls_sync_start(jq_tls_t *t, struct redisContext *ctx, const char *host, char *err,
                                 size_t errlen);

/* redisGetReply over the session s: the commands appended to ctx
 * (redisAppendCommand*) go out through it, what it reads goes to ctx's
 * reader. Returns REDIS_OK with *reply (freeReplyObject), or REDIS_ERR
 * with ctx->err and ctx->errstr set as hiredis sets them (a timeout, a
 * close, the server's alert). */
int jq_tls_sync_reply(jq_tls_conn_t *s, struct redisContext *ctx, void **reply);

#endif
