/* See dynlib.h. */

#include <dlfcn.h>
#include <stdio.h>

#include "dynlib.h"

int jq_dynlib_load(void **handle, const char *soname, const char *what, const jq_dynlib_sym_t *syms,
                   size_t n, char *err, size_t errlen) {
    if (*handle != NULL) return 0;
    void *so = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        snprintf(err, errlen, "%s: cannot load %s: %s", what, soname, dlerror());
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((*syms[i].slot = dlsym(so, syms[i].name)) == NULL) {
            snprintf(err, errlen, "%s: %s has no %s", what, soname, syms[i].name);
            dlclose(so);
            return -1;
        }
    }
    *handle = so;
    return 0;
}
