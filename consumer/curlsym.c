/* See curlsym.h. The library stays loaded for the life of the process. */

#include <dlfcn.h>
#include <stdio.h>

#include "curlsym.h"

jq_curl_t jq_curl;

int jq_curl_load(char *err, size_t errlen) {
    static void *lib;
    if (lib != NULL)
        return 0;
    void *so = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        snprintf(err, errlen, "http: cannot load libcurl: %s", dlerror());
        return -1;
    }
#define JQ_CURL_LOOKUP(n)                                                   \
    if ((*(void **)&jq_curl.n = dlsym(so, "curl_" #n)) == NULL) {            \
        snprintf(err, errlen, "http: libcurl has no curl_%s", #n);          \
        dlclose(so);                                                        \
        return -1;                                                          \
    }
    JQ_CURL_SYMS(JQ_CURL_LOOKUP)
#undef JQ_CURL_LOOKUP
    lib = so;
    return 0;
}
