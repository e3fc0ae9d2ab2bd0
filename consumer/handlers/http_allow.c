/* The http allow list (see http_allow.h). */

#include "http_allow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The parts of one URL that decide where a request goes. */
typedef struct parts {
    char scheme[8];
    char host[256];
    long port;
    char path[2048];
    int has_query;
} parts_t;

static int get_part(CURLU *u, CURLUPart what, char *out, size_t outlen, unsigned flags) {
    char *v = NULL;
    CURLUcode rc = curl_url_get(u, what, &v, flags);
    if (rc != CURLUE_OK) {
        out[0] = '\0';
        return rc;
    }
    int fits = strlen(v) < outlen;
    if (fits) memcpy(out, v, strlen(v) + 1);
    curl_free(v);
    return fits ? 0 : -1;
}

/* Percent-encodings that some server would decode into a path separator, a
 * dot segment or a string end, after our check. */
static int encoded_escape(const char *path) {
    static const char *const bad[] = {"%2f", "%5c", "%2e", "%00"};
    for (const char *p = path; (p = strchr(p, '%')) != NULL; p++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            if (strncasecmp(p, bad[i], 3) == 0) return 1;
    return 0;
}

static int dot_segment(const char *path) {
    for (const char *s = path; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 1;
        s += n + (e != NULL);
    }
    return 0;
}

/* Parses text into u and pt. Returns 0 or -1 with err. */
static int parse(CURLU *u, const char *text, parts_t *pt, char *err, size_t errlen) {
    if (strchr(text, '\\')) {
        snprintf(err, errlen, "a backslash in the URL");
        return -1;
    }
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, text, 0);
    if (rc != CURLUE_OK) {
        snprintf(err, errlen, "not a valid URL (%s)", curl_url_strerror(rc));
        return -1;
    }
    if (get_part(u, CURLUPART_SCHEME, pt->scheme, sizeof(pt->scheme), 0) != 0 ||
        (strcmp(pt->scheme, "http") != 0 && strcmp(pt->scheme, "https") != 0)) {
        snprintf(err, errlen, "only http and https URLs");
        return -1;
    }
    char tmp[256];
    if (get_part(u, CURLUPART_USER, tmp, sizeof(tmp), 0) != CURLUE_NO_USER ||
        get_part(u, CURLUPART_PASSWORD, tmp, sizeof(tmp), 0) != CURLUE_NO_PASSWORD ||
        get_part(u, CURLUPART_OPTIONS, tmp, sizeof(tmp), 0) != CURLUE_NO_OPTIONS) {
        snprintf(err, errlen, "a URL with userinfo (user@ or user:password@)");
        return -1;
    }
    if (get_part(u, CURLUPART_HOST, pt->host, sizeof(pt->host), 0) != 0 || pt->host[0] == '\0') {
        snprintf(err, errlen, "no host or a host too long");
        return -1;
    }
    for (char *c = pt->host; *c; c++) *c = (char)tolower((unsigned char)*c);
    char port[16];
    if (get_part(u, CURLUPART_PORT, port, sizeof(port), CURLU_DEFAULT_PORT) != 0) {
        snprintf(err, errlen, "bad port");
        return -1;
    }
    pt->port = strtol(port, NULL, 10);
    if (get_part(u, CURLUPART_PATH, pt->path, sizeof(pt->path), 0) != 0) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    if (encoded_escape(pt->path) || dot_segment(pt->path)) {
        snprintf(err, errlen, "an encoded /, \\, . or NUL, or a dot segment, in the path");
        return -1;
    }
    char *q = NULL;
    pt->has_query = curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK ||
                    curl_url_get(u, CURLUPART_FRAGMENT, &q, 0) == CURLUE_OK;
    curl_free(q);
    return 0;
}

int jq_http_allow_add(jq_http_allow_t *a, const char *prefix, char *err, size_t errlen) {
    if (a->n == JQ_HTTP_ALLOW_MAX) {
        snprintf(err, errlen, "--http-allow: at most %d prefixes", JQ_HTTP_ALLOW_MAX);
        return -1;
    }
    CURLU *u = curl_url();
    if (u == NULL) {
        snprintf(err, errlen, "--http-allow: out of memory");
        return -1;
    }
    parts_t pt;
    char why[128];
    int rc = parse(u, prefix, &pt, why, sizeof(why));
    curl_url_cleanup(u);
    if (rc == 0 && pt.has_query) {
        snprintf(why, sizeof(why), "a prefix has no query or fragment");
        rc = -1;
    }
    if (rc == 0 && strlen(pt.path) >= sizeof(a->p[0].path)) {
        snprintf(why, sizeof(why), "path too long");
        rc = -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "--http-allow '%.200s': %s", prefix, why);
        return -1;
    }
    jq_http_prefix_t *p = &a->p[a->n++];
    snprintf(p->scheme, sizeof(p->scheme), "%s", pt.scheme);
    snprintf(p->host, sizeof(p->host), "%s", pt.host);
    p->port = pt.port;
    memcpy(p->path, pt.path, strlen(pt.path) + 1); /* length checked above */
    return 0;
}

static int under(const jq_http_prefix_t *p, const parts_t *pt) {
    if (strcmp(p->scheme, pt->scheme) != 0 || strcmp(p->host, pt->host) != 0 || p->port != pt->port)
        return 0;
    size_t n = strlen(p->path);
    if (n == 0 || (n == 1 && p->path[0] == '/')) return 1;
    if (strncmp(pt->path, p->path, n) != 0) return 0;
    return p->path[n - 1] == '/' || pt->path[n] == '\0' || pt->path[n] == '/';
}

int jq_http_allow_check(const jq_http_allow_t *a, const char *url, size_t len, CURLU **out,
                        char *err, size_t errlen) {
    char text[8192];
    *out = NULL;
    if (len >= sizeof(text) || memchr(url, '\0', len)) {
        snprintf(err, errlen, "URL too long or with a NUL");
        return -1;
    }
    memcpy(text, url, len);
    text[len] = '\0';
    CURLU *u = curl_url();
    if (u == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    parts_t pt;
    if (parse(u, text, &pt, err, errlen) != 0) {
        curl_url_cleanup(u);
        return -1;
    }
    for (int i = 0; i < a->n; i++)
        if (under(&a->p[i], &pt)) {
            *out = u;
            return 0;
        }
    curl_url_cleanup(u);
    snprintf(err, errlen, "not under any --http-allow prefix");
    return -1;
}

/* One URL's origin as "scheme://host:port"; "" when a part is missing. */
static void origin(CURLU *u, char *out, size_t outlen) {
    char scheme[8], host[256], port[16];
    if (get_part(u, CURLUPART_SCHEME, scheme, sizeof(scheme), 0) != 0 ||
        get_part(u, CURLUPART_HOST, host, sizeof(host), 0) != 0 ||
        get_part(u, CURLUPART_PORT, port, sizeof(port), CURLU_DEFAULT_PORT) != 0) {
        out[0] = '\0';
        return;
    }
    for (char *c = host; *c; c++) *c = (char)tolower((unsigned char)*c);
    snprintf(out, outlen, "%s://%s:%s", scheme, host, port);
}

int jq_http_same_origin(CURLU *a, CURLU *b) {
    char oa[300], ob[300];
    origin(a, oa, sizeof(oa));
    origin(b, ob, sizeof(ob));
    return oa[0] != '\0' && strcmp(oa, ob) == 0;
}
