#ifndef JQ_URL_H
#define JQ_URL_H

/* Redis URLs: redis://[[user]:password@]host[:port][/db], the same with
 * rediss:// for TLS (tls.h), unix:///path/to/socket[?db=N], and Sentinel's
 * redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db]
 * whose hosts are the sentinels asked for the address of the master named
 * MASTER (common/sentinel.h); the user and password are the master's, and
 * ?sentinel_password=P authenticates to the sentinels. rediss+sentinel://
 * sets tls: TLS to the sentinels and to the master.
 *
 * Redis Cluster: redis+cluster://[[user]:password@]host[:port][,host[:port]...]
 * (rediss+cluster:// for TLS) names seed nodes, any of which tells where
 * every slot is (slotmap.h); host and port are the first seed's. A plain
 * redis:// URL may also lead to a cluster: libjobq asks the server
 * (cluster_enabled:1) and then takes that one as the only seed. */

#include <stddef.h>

#define JQ_URL_DEFAULT "redis://127.0.0.1:6379"
#define JQ_URL_SENTINELS_MAX 8
#define JQ_URL_SENTINEL_PORT 26379

typedef struct jq_url_addr {
    char host[256];
    int port;
} jq_url_addr_t;

typedef struct jq_url {
    int is_unix; /* 1: `path` is a unix socket, host/port unused */
    int tls;     /* 1: rediss://, TLS over TCP */
    char host[256];
    int port; /* default 6379 */
    char path[256];
    char user[128];     /* empty: no user (AUTH with password only) */
    char password[256]; /* empty: no AUTH */
    int db;             /* default 0: no SELECT */
    /* Sentinel (redis+sentinel://): host and port above are empty and 0;
     * each connection asks the sentinels where the master is. */
    char master_name[128]; /* empty: not a sentinel URL */
    int nsentinels;
    jq_url_addr_t sentinels[JQ_URL_SENTINELS_MAX];
    char sentinel_password[256]; /* empty: no AUTH to the sentinels */
    /* Cluster (redis+cluster://): the seed nodes, the first also in host
     * and port. */
    int cluster;
    int nseeds;
    jq_url_addr_t seeds[JQ_URL_SENTINELS_MAX];
} jq_url_t;

/* Whether u names its master through sentinels. */
static inline int jq_url_sentinel(const jq_url_t *u) { return u->master_name[0] != '\0'; }

/* Parses s into *u. Returns 0, or -1 with err naming what is wrong, e.g.
 * "bad redis url 'x': expected redis:// or unix://". */
int jq_url_parse(const char *s, jq_url_t *u, char *err, size_t errlen);

/* Writes a printable form without the password (for logs); a sentinel
 * URL prints its sentinels and master name, never its sentinel password. */
void jq_url_format(const jq_url_t *u, char *buf, size_t cap);

#endif
