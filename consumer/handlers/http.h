#ifndef JQ_HTTP_H
#define JQ_HTTP_H

/* The http job type: one HTTP request described by the payload
 *     {url, method: "GET", headers: {name: value}, body: str|bin,
 *      timeout_ms: 30000, fail_on_status: true}
 * made with libcurl's multi interface on the worker's own libuv loop (curl's
 * sockets watched with uv_poll, its timeouts with a uv_timer: no thread per
 * request), returning {status, headers: {name: value}, body: str|bin}. A
 * status outside 200-299 fails the attempt unless fail_on_status is false.
 *
 * Off unless --http-allow PREFIX is given: only URLs under an allowed prefix
 * are called (http_allow.h), redirects are followed by us, hop by hop, only
 * to allowed URLs (at most 5), only http and https are spoken, no proxy from
 * the environment is used, and a response larger than --http-max-response
 * fails the attempt. */

#include <stddef.h>

#include "registry.h"

struct jq_options;

/* Registers "http" when o has --http-allow prefixes (checking each).
 * Returns 0, or -1 with err. */
int jq_http_register(jq_registry_t *r, const struct jq_options *o, char *err, size_t errlen);

#endif
