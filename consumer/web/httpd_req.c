/* Parsing one request into its connection, and the request as handlers
 * see it (httpd.h). The limits are checked here, while the bytes arrive:
 * a callback that finds one passed sets the status to answer (reject)
 * and stops the parser. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd_conn.h"

const char *jq_httpd_reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Unknown";
    }
}

/* ---- parsing ---- */

static int head_append(jq_http_req_t *c, const char *at, size_t len) {
    c->head_bytes += len;
    if (c->head_len + len + 1 > sizeof(c->head) || c->head_bytes > JQ_HTTPD_MAX_HEAD) {
        c->reject = 431;
        return -1;
    }
    memcpy(c->head + c->head_len, at, len);
    c->head_len += len;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    c->head_bytes += len;
    if (c->url_len + len > JQ_HTTPD_MAX_URL) {
        c->reject = 414;
        return -1;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->in_value || c->nheaders == 0) {
        /* A new header: end the previous value, start a name. */
        if (c->nheaders > 0 && head_append(c, "", 1) < 0) return -1;
        if (c->nheaders == JQ_HTTPD_MAX_HEADERS) {
            c->reject = 431;
            return -1;
        }
        c->name_at[c->nheaders] = c->head_len;
        c->value_at[c->nheaders] = (size_t)-1;
        c->nheaders++;
        c->in_value = 0;
    }
    return head_append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->nheaders == 0) return -1;
    if (!c->in_value) {
        if (head_append(c, "", 1) < 0) return -1;
        c->value_at[c->nheaders - 1] = c->head_len;
        c->in_value = 1;
    }
    return head_append(c, at, len);
}

static int on_headers_complete(http_parser *p) {
    jq_http_req_t *c = p->data;
    if (c->nheaders > 0 && head_append(c, "", 1) < 0) return -1;
    /* A header with no value at all still gets one, empty. */
    for (int i = 0; i < c->nheaders; i++)
        if (c->value_at[i] == (size_t)-1) c->value_at[i] = c->head_len - 1;
    c->headers_done = 1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > JQ_HTTPD_MAX_BODY) {
        c->reject = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    jq_http_req_t *c = p->data;
    if (c->body_len + len > JQ_HTTPD_MAX_BODY) {
        c->reject = 413;
        return -1;
    }
    char *b = realloc(c->body, c->body_len + len + 1);
    if (!b) {
        c->reject = 500;
        return -1;
    }
    memcpy(b + c->body_len, at, len);
    c->body = b;
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p) {
    jq_http_req_t *c = p->data;
    c->complete = 1;
    http_parser_pause(p, 1); /* one request per connection: ignore the rest */
    return 0;
}

const http_parser_settings jq_httpd_parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the request, as handlers see it ---- */

int jq_httpd_add_header(jq_http_req_t *c, const char *name, const char *value) {
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) return -1;
    size_t need = strlen(name) + strlen(value) + 4;
    if (c->extra_len + need >= sizeof(c->extra)) return -1;
    c->extra_len += (size_t)snprintf(c->extra + c->extra_len, sizeof(c->extra) - c->extra_len,
                                     "%s: %s\r\n", name, value);
    return 0;
}

/* ---- request accessors ---- */

const char *jq_httpd_method(const jq_http_req_t *c) { return c->method; }
const char *jq_httpd_path(const jq_http_req_t *c) { return c->url; }
const char *jq_httpd_query(const jq_http_req_t *c) { return c->query; }

const char *jq_httpd_header(const jq_http_req_t *c, const char *name) {
    for (int i = 0; i < c->nheaders; i++)
        if (strcasecmp(c->head + c->name_at[i], name) == 0) return c->head + c->value_at[i];
    return NULL;
}

const char *jq_httpd_body(const jq_http_req_t *c, size_t *len) {
    if (len) *len = c->body_len;
    return c->body ? c->body : "";
}
