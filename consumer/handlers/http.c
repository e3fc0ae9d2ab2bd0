/* The http handler (see http.h): one request per job, checked against the
 * allow list, run on the worker's loop by curluv.c. */

#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"
#include "config.h"
#include "curluv.h"
#include "http_allow.h"
#include "options.h"

#define MAX_REDIRECTS 5
#define MAX_HEADERS 100
#define MAX_HEADER_BYTES (64 * 1024)
#define DEFAULT_TIMEOUT_MS 30000

static struct {
    jq_http_allow_t allow;
    const char *allow_list; /* --http-allow, borrowed from the options */
    int loaded;             /* libcurl loaded, allow parsed from allow_list */
    size_t max_response;
    jq_handler_t h;
} conf;

typedef struct req {
    jq_task_t *t;
    CURL *easy;
    int added; /* easy is in the curluv session */
    CURLU *url;
    struct curl_slist *headers;
    const char *body; /* borrowed from the payload */
    size_t bodylen;
    char method[16];
    long timeout_ms;
    uint64_t deadline; /* loop time: the request's end, redirects included */
    int fail_on_status;
    int hops;
    char *resp;
    size_t resplen, respcap;
    int over;
    char *hdr; /* the last response's header lines */
    size_t hdrlen, hdrcap;
    int nhdr;
    char errbuf[CURL_ERROR_SIZE];
} req_t;

/* ---- one request ---- */

static void req_free(req_t *q) {
    if (q->easy) {
        if (q->added) jq_curluv_remove(q->easy);
        curl_easy_cleanup(q->easy);
    }
    curl_url_cleanup(q->url);
    curl_slist_free_all(q->headers);
    free(q->resp);
    free(q->hdr);
    free(q);
}

static int grow(char **buf, size_t *cap, size_t need, size_t limit) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    if (n > limit) n = limit;
    if (n < need) return -1;
    char *nb = realloc(*buf, n);
    if (nb == NULL) return -1;
    *buf = nb;
    *cap = n;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp) {
    req_t *q = userp;
    size_t len = size * n;
    if (q->resplen + len > conf.max_response ||
        grow(&q->resp, &q->respcap, q->resplen + len, conf.max_response) != 0) {
        q->over = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    memcpy(q->resp + q->resplen, data, len);
    q->resplen += len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp) {
    req_t *q = userp;
    size_t len = size * n;
    /* A new status line starts a new response (a 100 Continue, a redirect):
     * only the last one's headers are kept. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        q->hdrlen = 0;
        q->nhdr = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL) return len; /* the blank line at the end */
    /* A NUL would end the line early for pack_headers' string walk. */
    if (memchr(data, '\0', len) != NULL) return len;
    if (q->nhdr >= MAX_HEADERS || q->hdrlen + len + 1 > MAX_HEADER_BYTES ||
        grow(&q->hdr, &q->hdrcap, q->hdrlen + len + 1, MAX_HEADER_BYTES) != 0)
        return len; /* more than we keep: dropped, the request goes on */
    memcpy(q->hdr + q->hdrlen, data, len);
    q->hdrlen += len;
    q->hdr[q->hdrlen] = '\0';
    q->nhdr++;
    return len;
}

/* Packs the kept header lines as a map of lower-case names; a repeated
 * name keeps its last value. Returns 0, or -1 out of memory. */
static int pack_headers(msgpack_packer *pk, req_t *q) {
    if (msgpack_pack_map(pk, (size_t)q->nhdr) != 0) return -1;
    char *line = q->hdr;
    for (int i = 0; i < q->nhdr; i++) {
        char *end = strchr(line, '\n');
        char *colon = strchr(line, ':');
        size_t nlen = (size_t)(colon - line);
        for (size_t j = 0; j < nlen; j++) line[j] = (char)tolower((unsigned char)line[j]);
        const char *v = colon + 1;
        const char *ve = end ? end : line + strlen(line);
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ')) ve--;
        if (jq_codec_pack_text(pk, line, nlen) != 0 ||
            jq_codec_pack_text(pk, v, (size_t)(ve - v)) != 0)
            return -1;
        line = end ? end + 1 : line + strlen(line);
    }
    return 0;
}

/* Packs {status, headers, body} into t's result. Returns 0, or -1 out of
 * memory (the result is then cut short: the caller fails the attempt). */
static int pack_result(jq_task_t *t, req_t *q, long status) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, 3) != 0 || msgpack_pack_str_with_body(&pk, "status", 6) != 0 ||
        msgpack_pack_long(&pk, status) != 0 || msgpack_pack_str_with_body(&pk, "headers", 7) != 0 ||
        pack_headers(&pk, q) != 0 || msgpack_pack_str_with_body(&pk, "body", 4) != 0)
        return -1;
    return jq_codec_pack_text(&pk, q->resp ? q->resp : "", q->resplen);
}

/* A 4xx says the request itself is wrong, and sending it again gets the
 * same answer; but 408 (request timeout) and 429 (too many requests) are
 * worth another try. */
static int permanent_status(long status) {
    return status >= 400 && status <= 499 && status != 408 && status != 429;
}

/* The last response's Retry-After in ms: delay-seconds, or an HTTP date
 * (RFC 9110: "Sun, 06 Nov 1994 08:49:37 GMT"), at least 1 ms; -1 when
 * absent or unreadable. */
static long long retry_after(const req_t *q) {
    const char *line = q->hdr;
    for (int i = 0; line && i < q->nhdr; i++) {
        const char *end = strchr(line, '\n');
        if (strncasecmp(line, "retry-after:", 12) == 0) {
            char v[64];
            const char *s = line + 12;
            while (*s == ' ' || *s == '\t') s++;
            size_t n = strcspn(s, "\r\n");
            if (n >= sizeof(v)) return -1;
            memcpy(v, s, n);
            while (n && v[n - 1] == ' ') n--;
            v[n] = '\0';
            char *e;
            long long secs = strtoll(v, &e, 10);
            if (n && !*e && secs >= 0) return secs > 0 ? secs * 1000 : 1;
            static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
            struct tm tm;
            char mon[4];
            int used = 0;
            memset(&tm, 0, sizeof(tm));
            if (sscanf(v, "%*3s, %d %3s %d %d:%d:%d GMT%n", &tm.tm_mday, mon, &tm.tm_year,
                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
                (size_t)used != n || strlen(mon) != 3 || !strstr(months, mon) ||
                (strstr(months, mon) - months) % 3)
                return -1;
            tm.tm_mon = (int)((strstr(months, mon) - months) / 3);
            tm.tm_year -= 1900;
            long long ms = ((long long)timegm(&tm) - (long long)time(NULL)) * 1000;
            return ms > 0 ? ms : 1;
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

static void finish(req_t *q, CURLcode rc) {
    jq_task_t *t = q->t;
    long status = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    if (q->over || rc == CURLE_FILESIZE_EXCEEDED) {
        jq_task_fail(t, "http: response body over --http-max-response (%zu bytes)",
                     conf.max_response);
    } else if (rc != CURLE_OK) {
        jq_task_fail(t, "http: %s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
    } else if (q->fail_on_status && (status == 429 || status == 503) && retry_after(q) >= 0) {
        /* Rate limited: back in Retry-After, without using an attempt,
         * and the queue slows down as long (handler.h). */
        long long ms = retry_after(q);
        jq_task_retry_after(t, ms, "http: status %ld, retry after %lld ms", status, ms);
    } else if (q->fail_on_status && permanent_status(status)) {
        jq_task_fail_permanent(t, "http: status %ld", status);
    } else if (q->fail_on_status && (status < 200 || status > 299)) {
        jq_task_fail(t, "http: status %ld", status);
    } else if (pack_result(t, q, status) != 0) {
        msgpack_sbuffer_clear(&t->result); /* no half-written result */
        jq_task_fail(t, "http: out of memory");
    }
    t->hstate = NULL;
    req_free(q);
    jq_task_done(t); /* last: the worker may free t */
}

/* Removes the headers that carry credentials from q's list. */
static void drop_credentials(req_t *q) {
    static const char *const creds[] = {"Authorization:", "Cookie:", "Proxy-Authorization:"};
    struct curl_slist **link = &q->headers;
    while (*link != NULL) {
        struct curl_slist *h = *link;
        int drop = 0;
        for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++)
            if (strncasecmp(h->data, creds[i], strlen(creds[i])) == 0) drop = 1;
        if (!drop) {
            link = &h->next;
            continue;
        }
        *link = h->next;
        h->next = NULL;
        curl_slist_free_all(h);
    }
}

static int configure(req_t *q, char *err, size_t errlen);
static void on_transfer_done(CURL *easy, CURLcode rc);

/* A 3xx with a Location: follow it ourselves, only to an allowed URL. */
static int follow(req_t *q, int *followed, char *err, size_t errlen) {
    long status = 0;
    char *loc = NULL;
    *followed = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308) return 0;
    if (curl_easy_getinfo(q->easy, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || loc == NULL)
        return 0;
    if (++q->hops > MAX_REDIRECTS) {
        snprintf(err, errlen, "http: more than %d redirects", MAX_REDIRECTS);
        return -1;
    }
    CURLU *next;
    char why[128];
    if (jq_http_allow_check(&conf.allow, loc, strlen(loc), &next, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "http: redirect to %.100s refused: %s", loc, why);
        return -1;
    }
    /* As curl does on a redirect to another host: the job's credentials
     * were meant for the origin it named. */
    if (!jq_http_same_origin(q->url, next)) drop_credentials(q);
    /* The handle points at the old URL until it is reset. */
    jq_curluv_remove(q->easy);
    q->added = 0;
    curl_easy_reset(q->easy);
    curl_url_cleanup(q->url);
    q->url = next;
    /* As browsers do: 303, and 301/302 after a POST, become a GET. */
    if (status == 303 || ((status == 301 || status == 302) && strcmp(q->method, "POST") == 0)) {
        snprintf(q->method, sizeof(q->method), "GET");
        q->body = NULL;
        q->bodylen = 0;
    }
    q->resplen = 0;
    q->hdrlen = 0;
    q->nhdr = 0;
    if (configure(q, err, errlen) != 0 ||
        jq_curluv_add(q->t->loop, q->easy, on_transfer_done) != 0) {
        if (err[0] == '\0') snprintf(err, errlen, "http: cannot follow the redirect");
        return -1;
    }
    q->added = 1;
    *followed = 1;
    return 0;
}

/* curluv: q's transfer ended; follow a redirect or finish. */
static void on_transfer_done(CURL *easy, CURLcode rc) {
    req_t *q = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&q);
    char err[JQ_TASK_ERROR_LEN] = "";
    int followed = 0;
    if (rc == CURLE_OK && follow(q, &followed, err, sizeof(err)) != 0) {
        jq_task_t *t = q->t;
        t->hstate = NULL;
        req_free(q);
        jq_task_fail(t, "%s", err);
        jq_task_done(t);
    } else if (!followed) {
        finish(q, rc);
    }
}

/* What is left of the job's timeout_ms for the next hop: a redirect gets
 * no fresh allowance. At least 1 ms, which curl then reports as its own
 * timeout. */
static long time_left(const req_t *q) {
    uint64_t now = uv_now(q->t->loop);
    return q->deadline > now ? (long)(q->deadline - now) : 1;
}

/* Sets every option of one hop on q->easy. */
static int configure(req_t *q, char *err, size_t errlen) {
    CURL *e = q->easy;
    int ok =
        curl_easy_setopt(e, CURLOPT_CURLU, q->url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        /* Never a proxy from http_proxy and friends: it would take the
         * request anywhere. */
        curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, time_left(q)) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)conf.max_response) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, q) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERDATA, q) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PRIVATE, q) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, "jobq") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers) == CURLE_OK;
    if (ok && strcmp(q->method, "HEAD") == 0)
        ok = curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    else if (ok && strcmp(q->method, "GET") != 0)
        ok = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method) == CURLE_OK;
    if (ok && (q->body != NULL || strcmp(q->method, "POST") == 0))
        ok = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->bodylen) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body ? q->body : "") == CURLE_OK;
    if (!ok) snprintf(err, errlen, "http: cannot set up the request");
    return ok ? 0 : -1;
}

/* ---- the payload ---- */

static int str_of(const msgpack_object *o, const char **p, size_t *n) {
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *n = o->via.str.size;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *n = o->via.bin.size;
        return 0;
    }
    return -1;
}

static int token(const char *p, size_t n) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && !strchr(extra, p[i])) return 0;
    return 1;
}

/* Returns the header's canonical name when a job may not set it, else
 * NULL. */
static const char *reserved_header(const char *k, size_t kn) {
    static const char *const reserved[] = {
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Upgrade",
        "TE",
        "Trailer",
        "Expect",
        "Proxy-Connection",
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strlen(reserved[i]) == kn && strncasecmp(k, reserved[i], kn) == 0) return reserved[i];
    return NULL;
}

static int add_headers(req_t *q, const msgpack_object *h, char *err, size_t errlen) {
    if (h->type != MSGPACK_OBJECT_MAP || h->via.map.size > MAX_HEADERS) {
        snprintf(err, errlen, "http: headers must be a map of at most %d str: str", MAX_HEADERS);
        return -1;
    }
    for (uint32_t i = 0; i < h->via.map.size; i++) {
        const char *k = "", *v = "";
        size_t kn = 0, vn = 0;
        if (str_of(&h->via.map.ptr[i].key, &k, &kn) != 0 ||
            str_of(&h->via.map.ptr[i].val, &v, &vn) != 0 || !token(k, kn) || memchr(v, '\r', vn) ||
            memchr(v, '\n', vn) || memchr(v, '\0', vn) || kn + vn > 8192) {
            snprintf(err, errlen,
                     "http: bad header %.*s (want a token name and "
                     "a value without CR, LF or NUL)",
                     (int)(kn < 64 ? kn : 64), k);
            return -1;
        }
        /* Host picks the virtual host behind an allowed address, and the
         * framing headers decide where this request ends and the next
         * begins (a Content-Length: 0 would make the body a second request,
         * to any path and Host, on the allowed connection): a job sets
         * none of them; curl writes them from the method and the body. */
        const char *why = reserved_header(k, kn);
        if (why != NULL) {
            snprintf(err, errlen, "http: the %s header is not the job's to set", why);
            return -1;
        }
        char line[8200];
        snprintf(line, sizeof(line), "%.*s: %.*s", (int)kn, k, (int)vn, v);
        struct curl_slist *n = curl_slist_append(q->headers, line);
        if (n == NULL) {
            snprintf(err, errlen, "http: out of memory");
            return -1;
        }
        q->headers = n;
    }
    return 0;
}

/* Reads the payload into q. Returns 0, or -1 with err. */
static int read_payload(req_t *q, const msgpack_object *p, char *err, size_t errlen) {
    const msgpack_object *url = jq_codec_map_get(p, "url");
    const msgpack_object *method = jq_codec_map_get(p, "method");
    const msgpack_object *headers = jq_codec_map_get(p, "headers");
    const msgpack_object *body = jq_codec_map_get(p, "body");
    const msgpack_object *timeout = jq_codec_map_get(p, "timeout_ms");
    const msgpack_object *fos = jq_codec_map_get(p, "fail_on_status");
    const char *s;
    size_t n;
    if (url == NULL || str_of(url, &s, &n) != 0) {
        snprintf(err, errlen, "http: payload must be a map with a url");
        return -1;
    }
    char why[128];
    if (jq_http_allow_check(&conf.allow, s, n, &q->url, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "http: %.*s refused: %s", (int)(n < 100 ? n : 100), s, why);
        return -1;
    }
    snprintf(q->method, sizeof(q->method), "GET");
    if (method != NULL) {
        if (str_of(method, &s, &n) != 0 || n >= sizeof(q->method) || !token(s, n)) {
            snprintf(err, errlen, "http: method must be a token like GET or POST");
            return -1;
        }
        for (size_t i = 0; i < n; i++) q->method[i] = (char)toupper((unsigned char)s[i]);
        q->method[n] = '\0';
    }
    if (headers != NULL && add_headers(q, headers, err, errlen) != 0) return -1;
    if (body != NULL && body->type != MSGPACK_OBJECT_NIL &&
        str_of(body, &q->body, &q->bodylen) != 0) {
        snprintf(err, errlen, "http: body must be a str or bin");
        return -1;
    }
    q->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (timeout != NULL) {
        if (timeout->type != MSGPACK_OBJECT_POSITIVE_INTEGER || timeout->via.u64 < 1 ||
            timeout->via.u64 > 86400000) {
            snprintf(err, errlen, "http: timeout_ms must be an integer from 1 to 86400000");
            return -1;
        }
        q->timeout_ms = (long)timeout->via.u64;
    }
    q->fail_on_status = 1;
    if (fos != NULL) {
        if (fos->type != MSGPACK_OBJECT_BOOLEAN) {
            snprintf(err, errlen, "http: fail_on_status must be true or false");
            return -1;
        }
        q->fail_on_status = fos->via.boolean;
    }
    return 0;
}

/* Loads libcurl and parses the allow list with its URL parser, once. */
static int http_load(char *err, size_t errlen) {
    if (conf.loaded) return 0;
    if (jq_curl_load(err, errlen) != 0) return -1;
    /* Thread-safe in Debian 12's libcurl (7.88, feature "threadsafe"),
     * and pool threads, which may be hashing meanwhile, never call it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "http: curl_global_init failed");
        return -1;
    }
    memset(&conf.allow, 0, sizeof(conf.allow));
    const char *pos = conf.allow_list, *e;
    size_t n;
    while ((e = jq_opts_list_next(&pos, &n)) != NULL) {
        char prefix[4096];
        snprintf(prefix, sizeof(prefix), "%.*s", (int)n, e);
        if (jq_http_allow_add(&conf.allow, prefix, err, errlen) != 0) return -1;
    }
    conf.loaded = 1;
    return 0;
}

static int http_start(jq_task_t *t) {
    char err[JQ_TASK_ERROR_LEN] = "";
    if (http_load(err, sizeof(err)) != 0) return jq_task_fail(t, "%s", err);
    req_t *q = calloc(1, sizeof(*q));
    if (q == NULL) return jq_task_fail(t, "http: out of memory");
    /* Every check before any socket: a refused URL makes no connection. */
    if (read_payload(q, t->payload, err, sizeof(err)) != 0) {
        /* A malformed payload or a URL outside the allow list: the same
         * on every attempt. */
        req_free(q);
        if (strcmp(err, "http: out of memory") == 0) return jq_task_fail(t, "%s", err);
        return jq_task_fail_permanent(t, "%s", err);
    }
    q->easy = curl_easy_init();
    if (q->easy == NULL) {
        req_free(q);
        return jq_task_fail(t, "http: out of memory");
    }
    q->t = t;
    q->deadline = uv_now(t->loop) + (uint64_t)q->timeout_ms;
    if (configure(q, err, sizeof(err)) != 0 ||
        jq_curluv_add(t->loop, q->easy, on_transfer_done) != 0) {
        req_free(q);
        return jq_task_fail(t, "%s", err[0] ? err : "http: cannot start the request");
    }
    q->added = 1;
    t->hstate = q;
    return 0;
}

static void http_cancel(jq_task_t *t) {
    req_t *q = t->hstate;
    if (q == NULL) return;
    t->hstate = NULL;
    req_free(q);
}

int jq_http_register(jq_registry_t *r, const jq_options_t *o, char *err, size_t errlen) {
    if (o->http_allow[0] == '\0') return 0;
    conf.allow_list = o->http_allow;
    /* The master loads and checks everything at start, so that a bad list
     * or a missing libcurl stops it before any worker exists. A worker,
     * given the list the master checked, loads libcurl at its first http
     * job: with the TLS and other libraries it links, libcurl made an idle
     * worker 10.8 MiB of RSS instead of 2.7. */
    if (o->worker_role[0] == '\0' && http_load(err, errlen) != 0) return -1;
    conf.max_response = (size_t)o->http_max_response;
    conf.h.name = "http";
    conf.h.kind = JQ_KIND_IO;
    conf.h.start = http_start;
    conf.h.cancel = http_cancel;
    r->adding = "--http-allow";
    return jq_registry_add(r, &conf.h, err, errlen);
}
