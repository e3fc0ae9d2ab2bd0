#ifndef JQ_CURLSYM_H
#define JQ_CURLSYM_H

/* libcurl, loaded with dlopen only when the http job type is turned on
 * (--http-allow): linked into every worker, its dependency libraries cost
 * each one megabytes of RSS that most consumers never use. Include this
 * instead of <curl/curl.h>: the curl_* calls below go through the table
 * that jq_curl_load() fills. */

#include <stddef.h>

#define CURL_DISABLE_TYPECHECK 1 /* its macros would hide ours */
#include <curl/curl.h>

/* One symbol list, laid out by hand (clang-format re-wraps it anew each run). */
/* clang-format off */
#define JQ_CURL_SYMS(X) \
    X(easy_cleanup) X(easy_getinfo) X(easy_init) X(easy_reset) \
    X(easy_setopt) X(easy_strerror) X(free) X(global_init) \
    X(multi_add_handle) X(multi_assign) X(multi_cleanup) X(multi_info_read) \
    X(multi_init) X(multi_remove_handle) X(multi_setopt) \
    X(multi_socket_action) X(slist_append) X(slist_free_all) X(url) \
    X(url_cleanup) X(url_get) X(url_set) X(url_strerror)
/* clang-format on */

#define JQ_CURL_FIELD(n) __typeof__(curl_##n) *n;
typedef struct jq_curl {
    JQ_CURL_SYMS(JQ_CURL_FIELD)
} jq_curl_t;
#undef JQ_CURL_FIELD

extern jq_curl_t jq_curl;

/* Loads libcurl.so.4 and every symbol above, once per process (later calls
 * return at once). Returns 0, or -1 with err. */
int jq_curl_load(char *err, size_t errlen);

/* curl.h wraps these three in macros that check the argument count. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_easy_cleanup (jq_curl.easy_cleanup)
#define curl_easy_getinfo (jq_curl.easy_getinfo)
#define curl_easy_init (jq_curl.easy_init)
#define curl_easy_reset (jq_curl.easy_reset)
#define curl_easy_setopt (jq_curl.easy_setopt)
#define curl_easy_strerror (jq_curl.easy_strerror)
#define curl_free (jq_curl.free)
#define curl_global_init (jq_curl.global_init)
#define curl_multi_add_handle (jq_curl.multi_add_handle)
#define curl_multi_assign (jq_curl.multi_assign)
#define curl_multi_cleanup (jq_curl.multi_cleanup)
#define curl_multi_info_read (jq_curl.multi_info_read)
#define curl_multi_init (jq_curl.multi_init)
#define curl_multi_remove_handle (jq_curl.multi_remove_handle)
#define curl_multi_setopt (jq_curl.multi_setopt)
#define curl_multi_socket_action (jq_curl.multi_socket_action)
#define curl_slist_append (jq_curl.slist_append)
#define curl_slist_free_all (jq_curl.slist_free_all)
#define curl_url (jq_curl.url)
#define curl_url_cleanup (jq_curl.url_cleanup)
#define curl_url_get (jq_curl.url_get)
#define curl_url_set (jq_curl.url_set)
#define curl_url_strerror (jq_curl.url_strerror)

#endif
