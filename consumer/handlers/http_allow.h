#ifndef JQ_HTTP_ALLOW_H
#define JQ_HTTP_ALLOW_H

/* The http handler's allow list (--http-allow PREFIX): which URLs a job may
 * call. Both the prefixes and every URL are parsed with curl's URL API and
 * compared part by part, never as strings:
 *   - scheme http or https, host (lower case, as curl normalises it: IPv4
 *     in dotted decimal), port (the scheme's default when absent) equal;
 *   - the path, after curl removed its dot segments, under the prefix's
 *     path on a segment boundary ("/api" allows "/api" and "/api/x", not
 *     "/apix"); a prefix path ending in "/" allows what starts with it;
 *   - refused outright: any userinfo (http://allowed@evil/), a path with
 *     percent-encoded "/", "\", "." or NUL, a backslash, a "." or ".."
 *     segment left, a scheme other than http and https.
 * What is checked is what is sent: the caller gets the parsed URL handle to
 * give curl (CURLOPT_CURLU). */

#include <stddef.h>
#include "curlsym.h"

#define JQ_HTTP_ALLOW_MAX 32

typedef struct jq_http_prefix {
    char scheme[8];
    char host[256];
    long port;
    char path[1024];
} jq_http_prefix_t;

typedef struct jq_http_allow {
    jq_http_prefix_t p[JQ_HTTP_ALLOW_MAX];
    int n;
} jq_http_allow_t;

/* Adds one prefix. Returns 0, or -1 with err (not a URL, userinfo, a query
 * or fragment, another scheme, too many). */
int jq_http_allow_add(jq_http_allow_t *a, const char *prefix, char *err, size_t errlen);

/* Checks url[0..len) against a. Returns 0 with *out set to the parsed URL
 * (the caller's: curl_url_cleanup), or -1 with err saying why it is
 * refused; *out is then NULL. */
int jq_http_allow_check(const jq_http_allow_t *a, const char *url, size_t len, CURLU **out,
                        char *err, size_t errlen);

/* 1 when a and b (both checked by jq_http_allow_check) name the same
 * origin: scheme, host and port (the scheme's default when absent). */
int jq_http_same_origin(CURLU *a, CURLU *b);

#endif
