#ifndef JQ_URL_H
#define JQ_URL_H

/* Redis URLs: redis://[[user]:password@]host[:port][/db], the same with
 * rediss:// for TLS (tls.h), and unix:///path/to/socket[?db=N]. */

#include <stddef.h>

#define JQ_URL_DEFAULT "redis://127.0.0.1:6379"

typedef struct jq_url {
    int is_unix; /* 1: `path` is a unix socket, host/port unused */
    int tls;     /* 1: rediss://, TLS over TCP */
    char host[256];
    int port; /* default 6379 */
    char path[256];
    char user[128];     /* empty: no user (AUTH with password only) */
    char password[256]; /* empty: no AUTH */
    int db;             /* default 0: no SELECT */
} jq_url_t;

/* Parses s into *u. Returns 0, or -1 with err naming what is wrong, e.g.
 * "bad redis url 'x': expected redis:// or unix://". */
int jq_url_parse(const char *s, jq_url_t *u, char *err, size_t errlen);

/* Writes a printable form without the password (for logs). */
void jq_url_format(const jq_url_t *u, char *buf, size_t cap);

#endif
