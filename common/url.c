/* Redis URLs (see url.h). The user-info rules follow redis-cli's own URI
 * parser, so a URL that works with `redis-cli -u` works here:
 * "user:pass@" sets both, ":pass@" and "pass@" set only the password, and
 * both parts may be percent-encoded. The last '@' ends the user info, so a
 * password may hold '@' or '/' even unencoded. */

#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"

#define REDIS_PREFIX "redis://"
#define REDISS_PREFIX "rediss://"
#define UNIX_PREFIX "unix://"
#define SENTINEL_PREFIX "redis+sentinel://"
#define SENTINEL_TLS_PREFIX "rediss+sentinel://"
#define CLUSTER_PREFIX "redis+cluster://"
#define CLUSTER_TLS_PREFIX "rediss+cluster://"

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into out[cap], decoding %XX. Returns 0, or -1 if it does
 * not fit or holds a bad escape. */
static int decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* A port or database number: digits only, in [min, max]. */
static int parse_num(const char *s, size_t n, long long min, long long max, long long *out) {
    return n > 0 && s[0] != '-' ? jq_parse_ll(s, n, min, max, out) : -1;
}

/* Reads the "?db=N" of a unix URL (or a redis one). */
static int parse_query(const char *q, jq_url_t *u, const char *s, char *err, size_t errlen) {
    long long db;
    if (strncmp(q, "db=", 3) != 0 || parse_num(q + 3, strlen(q + 3), 0, 1000000, &db) < 0) {
        snprintf(err, errlen, "bad redis url '%s': want ?db=N, got '?%s'", s, q);
        return -1;
    }
    u->db = (int)db;
    return 0;
}

/* Splits user info s[0..n) ("user:pass", ":pass" or "pass"). */
static int parse_userinfo(const char *s, size_t n, jq_url_t *u, const char *url, char *err,
                          size_t errlen) {
    const char *colon = memchr(s, ':', n);
    const char *pw = s;
    size_t pwlen = n;

    if (colon) {
        if (decode(s, (size_t)(colon - s), u->user, sizeof(u->user)) < 0) {
            snprintf(err, errlen, "bad redis url '%s': bad or too long user", url);
            return -1;
        }
        pw = colon + 1;
        pwlen = n - (size_t)(pw - s);
    }
    if (decode(pw, pwlen, u->password, sizeof(u->password)) < 0) {
        snprintf(err, errlen, "bad redis url: bad or too long password");
        return -1;
    }
    return 0;
}

static int parse_unix(const char *s, const char *rest, jq_url_t *u, char *err, size_t errlen) {
    /* unix://[userinfo@]/path[?db=N]: the user info, if any, ends at the
     * first "@/". */
    const char *at = rest[0] == '/' ? NULL : strstr(rest, "@/");
    const char *path = rest;
    const char *q;
    size_t plen;

    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), u, s, err, errlen) < 0) return -1;
        path = at + 1;
    }
    if (path[0] != '/') {
        snprintf(err, errlen, "bad redis url '%s': want unix:///absolute/path", s);
        return -1;
    }
    q = strchr(path, '?');
    plen = q ? (size_t)(q - path) : strlen(path);
    if (plen < 2 || plen >= sizeof(u->path)) {
        snprintf(err, errlen, "bad redis url '%s': socket path is %s", s,
                 plen < 2 ? "empty" : "too long");
        return -1;
    }
    memcpy(u->path, path, plen);
    u->path[plen] = '\0';
    u->is_unix = 1;
    return q ? parse_query(q + 1, u, s, err, errlen) : 0;
}

/* The host of host[0..end) into out ("[...]" for IPv6, e.g.
 * [::1]:6379), with *port at the text after its ':' or NULL. */
static int parse_host(const char *host, const char *end, char *out, size_t cap, const char **port,
                      const char *s, char *err, size_t errlen) {
    size_t hlen;

    *port = NULL;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close) {
            snprintf(err, errlen, "bad redis url '%s': missing ']'", s);
            return -1;
        }
        hlen = (size_t)(close - host - 1);
        if (hlen < cap) memcpy(out, host + 1, hlen);
        if (close + 1 < end) {
            if (close[1] != ':') {
                snprintf(err, errlen, "bad redis url '%s': junk after ']'", s);
                return -1;
            }
            *port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        hlen = (size_t)((colon ? colon : end) - host);
        if (colon) *port = colon + 1;
        if (hlen < cap) memcpy(out, host, hlen);
    }
    if (hlen == 0 || hlen >= cap) {
        snprintf(err, errlen, "bad redis url '%s': host is %s", s, hlen ? "too long" : "missing");
        return -1;
    }
    out[hlen] = '\0';
    return 0;
}

/* host[:port] of host[0..end) into a, the port defaulting to dflt. */
static int parse_addr(const char *host, const char *end, jq_url_addr_t *a, int dflt, const char *s,
                      char *err, size_t errlen) {
    const char *port;
    long long v;

    if (parse_host(host, end, a->host, sizeof(a->host), &port, s, err, errlen) < 0) return -1;
    a->port = dflt;
    if (!port) return 0;
    if (parse_num(port, (size_t)(end - port), 1, 65535, &v) < 0) {
        snprintf(err, errlen, "bad redis url '%s': port '%.*s' is not in 1..65535", s,
                 (int)(end - port), port);
        return -1;
    }
    a->port = (int)v;
    return 0;
}

static int parse_tcp(const char *s, const char *rest, jq_url_t *u, char *err, size_t errlen) {
    const char *at = strrchr(rest, '@');
    const char *host = at ? at + 1 : rest;
    const char *end = host + strcspn(host, "/?");
    long long v;
    jq_url_addr_t a;

    if (at && parse_userinfo(rest, (size_t)(at - rest), u, s, err, errlen) < 0) return -1;
    if (parse_addr(host, end, &a, 6379, s, err, errlen) < 0) return -1;
    memcpy(u->host, a.host, sizeof(u->host));
    u->port = a.port;
    if (*end == '/') {
        const char *db = end + 1;
        size_t dlen = strcspn(db, "?");
        if (dlen > 0 && parse_num(db, dlen, 0, 1000000, &v) < 0) {
            snprintf(err, errlen, "bad redis url '%s': database '%.*s' is not a number", s,
                     (int)dlen, db);
            return -1;
        }
        u->db = dlen > 0 ? (int)v : 0;
        end = db + dlen;
    }
    if (*end == '?') return parse_query(end + 1, u, s, err, errlen);
    return 0;
}

/* ---- redis+sentinel:// ---- */

#define SENTINEL_PW "?sentinel_password="

/* Where a sentinel URL's user info ends: its last '@' before the query
 * (the query's own '@' must be percent-encoded), or NULL. */
static const char *sentinel_at(const char *rest) {
    const char *q = strstr(rest, SENTINEL_PW);
    const char *at = NULL;
    for (const char *p = rest; *p && (!q || p < q); p++)
        if (*p == '@') at = p;
    return at;
}

/* "h1[:p1],h2[:p2]..." of hosts[0..end) into list (*n of them, at most
 * JQ_URL_SENTINELS_MAX, each port dflt unless given). */
static int parse_hosts(const char *hosts, const char *end, jq_url_addr_t *list, int *n, int dflt,
                       const char *what, const char *s, char *err, size_t errlen) {
    const char *h = hosts;
    for (;;) {
        const char *comma = memchr(h, ',', (size_t)(end - h));
        const char *stop = comma ? comma : end;
        if (*n == JQ_URL_SENTINELS_MAX) {
            snprintf(err, errlen, "bad redis url '%s': more than %d %s", s, JQ_URL_SENTINELS_MAX,
                     what);
            return -1;
        }
        if (parse_addr(h, stop, &list[*n], dflt, s, err, errlen) < 0) return -1;
        (*n)++;
        if (!comma) return 0;
        h = comma + 1;
    }
}

static int parse_sentinels(const char *hosts, const char *end, jq_url_t *u, const char *s,
                           char *err, size_t errlen) {
    return parse_hosts(hosts, end, u->sentinels, &u->nsentinels, JQ_URL_SENTINEL_PORT, "sentinels",
                       s, err, errlen);
}

/* redis+cluster://[userinfo@]h1[:p1][,h2[:p2]...][/]: no database (a
 * cluster has only 0), no query. */
static int parse_cluster(const char *s, const char *rest, jq_url_t *u, char *err, size_t errlen) {
    const char *at = strrchr(rest, '@');
    const char *hosts = at ? at + 1 : rest;
    const char *end = hosts + strcspn(hosts, "/?");

    if (at && parse_userinfo(rest, (size_t)(at - rest), u, s, err, errlen) < 0) return -1;
    if (parse_hosts(hosts, end, u->seeds, &u->nseeds, 6379, "seed nodes", s, err, errlen) < 0)
        return -1;
    if (strcmp(end, "") != 0 && strcmp(end, "/") != 0 && strcmp(end, "/0") != 0) {
        snprintf(err, errlen,
                 "bad redis url '%s': want redis+cluster://host[:port][,host[:port]...] "
                 "(a cluster has no database but 0, and takes no query)",
                 s);
        return -1;
    }
    u->cluster = 1;
    memcpy(u->host, u->seeds[0].host, sizeof(u->host));
    u->port = u->seeds[0].port;
    return 0;
}

/* "/MASTER[/db]" at path (up to the query or the end). */
static int parse_master(const char *path, jq_url_t *u, const char *s, char *err, size_t errlen) {
    const char *name = path + (*path == '/');
    size_t nlen = strcspn(name, "/?");
    long long v;

    if (*path != '/' || nlen == 0 ||
        decode(name, nlen, u->master_name, sizeof(u->master_name)) < 0 || !u->master_name[0]) {
        snprintf(err, errlen,
                 "bad redis url '%s': want redis+sentinel://host[:port][,host[:port]...]"
                 "/MASTER_NAME[/db]: master name %s",
                 s, nlen >= sizeof(u->master_name) ? "too long" : "missing or bad");
        u->master_name[0] = '\0';
        return -1;
    }
    const char *db = name + nlen;
    if (*db == '/') {
        size_t dlen = strcspn(db + 1, "?");
        if (dlen > 0 && parse_num(db + 1, dlen, 0, 1000000, &v) < 0) {
            snprintf(err, errlen, "bad redis url '%s': database '%.*s' is not a number", s,
                     (int)dlen, db + 1);
            return -1;
        }
        u->db = dlen > 0 ? (int)v : 0;
        db += 1 + dlen;
    }
    if (*db == '\0') return 0;
    if (strncmp(db, SENTINEL_PW, strlen(SENTINEL_PW)) != 0) {
        snprintf(err, errlen, "bad redis url '%s': want ?sentinel_password=P, got '%s'", s, db);
        return -1;
    }
    const char *pw = db + strlen(SENTINEL_PW);
    if (decode(pw, strlen(pw), u->sentinel_password, sizeof(u->sentinel_password)) < 0) {
        snprintf(err, errlen, "bad redis url: bad or too long sentinel password");
        return -1;
    }
    return 0;
}

static int parse_sentinel(const char *s, const char *rest, jq_url_t *u, char *err, size_t errlen) {
    const char *at = sentinel_at(rest);
    const char *hosts = at ? at + 1 : rest;
    const char *end = hosts + strcspn(hosts, "/?");

    if (at && parse_userinfo(rest, (size_t)(at - rest), u, s, err, errlen) < 0) return -1;
    if (parse_sentinels(hosts, end, u, s, err, errlen) < 0) return -1;
    u->host[0] = '\0';
    u->port = 0;
    return parse_master(end, u, s, err, errlen);
}

/* The URL as error messages show it: the user info's password part
 * replaced by "***", found the way the parsers find it (the last '@' of a
 * redis:// URL, the first "@/" of a unix:// one). Returns a malloc'd
 * string, or NULL when out of memory. */
static char *redacted(const char *s) {
    const char *sep = strstr(s, "://");
    const char *rest = sep ? sep + 3 : s;
    const char *at = NULL;
    char *out = malloc(strlen(s) + 8);

    if (!out) return NULL;
    if (sep && strncasecmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        at = rest[0] == '/' ? NULL : strstr(rest, "@/");
    else if (sep && sep - s > 9 && strncasecmp(sep - 9, "+sentinel", 9) == 0)
        at = sentinel_at(rest);
    else if (sep)
        at = strrchr(rest, '@');
    char *tail = out; /* where the user info ended */
    if (!at) {
        strcpy(out, s);
    } else {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t head = (size_t)((colon ? colon + 1 : rest) - s);
        memcpy(out, s, head);
        strcpy(out + head, "***");
        tail = out + head + 3;
        strcpy(tail, at);
    }
    /* A sentinel password is the rest of the URL: cut. */
    char *spw = strstr(tail, SENTINEL_PW);
    if (spw) strcpy(spw + strlen(SENTINEL_PW), "***");
    return out;
}

static int parse_any(const char *shown, const char *s, jq_url_t *u, char *err, size_t errlen) {
    if (strncasecmp(s, REDIS_PREFIX, strlen(REDIS_PREFIX)) == 0)
        return parse_tcp(shown, s + strlen(REDIS_PREFIX), u, err, errlen);
    if (strncasecmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
        return parse_unix(shown, s + strlen(UNIX_PREFIX), u, err, errlen);
    if (strncasecmp(s, REDISS_PREFIX, strlen(REDISS_PREFIX)) == 0) {
        u->tls = 1;
        return parse_tcp(shown, s + strlen(REDISS_PREFIX), u, err, errlen);
    }
    if (strncasecmp(s, SENTINEL_PREFIX, strlen(SENTINEL_PREFIX)) == 0)
        return parse_sentinel(shown, s + strlen(SENTINEL_PREFIX), u, err, errlen);
    if (strncasecmp(s, SENTINEL_TLS_PREFIX, strlen(SENTINEL_TLS_PREFIX)) == 0) {
        u->tls = 1; /* to the sentinels and to the master */
        return parse_sentinel(shown, s + strlen(SENTINEL_TLS_PREFIX), u, err, errlen);
    }
    if (strncasecmp(s, CLUSTER_PREFIX, strlen(CLUSTER_PREFIX)) == 0)
        return parse_cluster(shown, s + strlen(CLUSTER_PREFIX), u, err, errlen);
    if (strncasecmp(s, CLUSTER_TLS_PREFIX, strlen(CLUSTER_TLS_PREFIX)) == 0) {
        u->tls = 1;
        return parse_cluster(shown, s + strlen(CLUSTER_TLS_PREFIX), u, err, errlen);
    }
    snprintf(err, errlen,
             "bad redis url '%s': expected redis://, rediss://, redis+sentinel://, "
             "redis+cluster:// or unix://",
             shown);
    return -1;
}

int jq_url_parse(const char *s, jq_url_t *u, char *err, size_t errlen) {
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (!s) {
        snprintf(err, errlen, "bad redis url: none given");
        return -1;
    }
    /* Every message names the URL as given, but never its password. */
    char *shown = redacted(s);
    int rc = parse_any(shown ? shown : "(url)", s, u, err, errlen);
    free(shown);
    if (rc < 0) memset(u, 0, sizeof(*u)); /* no half-parsed password left behind */
    return rc;
}

/* Appends "host:port" (IPv6 in brackets) to buf. */
static void format_addr(char *buf, size_t cap, const jq_url_addr_t *a) {
    size_t n = strlen(buf);
    int v6 = strchr(a->host, ':') != NULL;
    if (n < cap)
        snprintf(buf + n, cap - n, "%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "", a->port);
}

static void format_sentinel(const jq_url_t *u, const char *auth, char *buf, size_t cap) {
    snprintf(buf, cap, "%s://%s%s", u->tls ? "rediss+sentinel" : "redis+sentinel", u->user, auth);
    for (int i = 0; i < u->nsentinels; i++) {
        if (i) strncat(buf, ",", cap - strlen(buf) - 1);
        format_addr(buf, cap, &u->sentinels[i]);
    }
    size_t n = strlen(buf);
    if (n < cap) snprintf(buf + n, cap - n, "/%s", u->master_name);
    if (u->db) {
        n = strlen(buf);
        if (n < cap) snprintf(buf + n, cap - n, "/%d", u->db);
    }
    if (u->sentinel_password[0]) strncat(buf, SENTINEL_PW "***", cap - strlen(buf) - 1);
}

void jq_url_format(const jq_url_t *u, char *buf, size_t cap) {
    /* The password is shown as "***" so a log still tells that one is set. */
    const char *auth = u->password[0] ? ":***@" : (u->user[0] ? "@" : "");

    if (cap == 0) return;
    if (jq_url_sentinel(u)) {
        format_sentinel(u, auth, buf, cap);
        return;
    }
    if (u->cluster && u->nseeds > 0) {
        snprintf(buf, cap, "%s://%s%s", u->tls ? "rediss+cluster" : "redis+cluster", u->user, auth);
        for (int i = 0; i < u->nseeds; i++) {
            if (i) strncat(buf, ",", cap - strlen(buf) - 1);
            format_addr(buf, cap, &u->seeds[i]);
        }
        return;
    }
    if (u->is_unix) {
        snprintf(buf, cap, "unix://%s%s%s%s", u->user, auth, u->path, u->db ? "?db=" : "");
    } else {
        int v6 = strchr(u->host, ':') != NULL;
        snprintf(buf, cap, "%s%s%s%s%s%s:%d", u->tls ? REDISS_PREFIX : REDIS_PREFIX, u->user, auth,
                 v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
    }
    if (u->db) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, u->is_unix ? "%d" : "/%d", u->db);
    }
}
