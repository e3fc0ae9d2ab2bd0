/* See curlsym.h. */

#include "curlsym.h"
#include "dynlib.h"

jq_curl_t jq_curl;

int jq_curl_load(char *err, size_t errlen) {
    static void *lib;
#define JQ_CURL_SYM(n) JQ_DYNLIB_SYM(jq_curl, "curl_", n)
    static const jq_dynlib_sym_t syms[] = {JQ_CURL_SYMS(JQ_CURL_SYM)};
#undef JQ_CURL_SYM
    return jq_dynlib_load(&lib, "libcurl.so.4", "http", syms, sizeof syms / sizeof syms[0], err,
                          errlen);
}
