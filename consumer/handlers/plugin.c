/* C plugins (see plugin.h and include/jobq/handler.h). The ABI version is a
 * data symbol read before any plugin code runs, so that a plugin built
 * against another layout of jq_task_t is refused, never called. */

#include "plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "config.h"

typedef struct load {
    jq_registry_t *r;
    char *err;
    size_t errlen;
    int failed;
} load_t;

/* host->add: registers into the registry; the first failure is kept (the
 * plugin may go on registering, but the consumer will stop). */
static int on_add(jq_plugin_host_t *host, const jq_handler_t *h) {
    load_t *l = host->priv;
    char why[JQ_ERR_LEN];
    if (jq_registry_add(l->r, h, why, sizeof(why)) == 0) return 0;
    if (!l->failed) snprintf(l->err, l->errlen, "--plugin %s: %s", host->path, why);
    l->failed = 1;
    return -1;
}

static int load_one(jq_registry_t *r, const char *path, char *err, size_t errlen) {
    /* RTLD_NOW: a missing symbol is found here, at start, not in a worker
     * in the middle of a job. RTLD_LOCAL: two plugins' own symbols never
     * meet. */
    void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (so == NULL) {
        snprintf(err, errlen, "--plugin %s: cannot load: %s", path, dlerror());
        return -1;
    }
    const unsigned *abi = dlsym(so, JQ_PLUGIN_ABI_SYMBOL);
    int (*reg)(jq_plugin_host_t *) =
        (int (*)(jq_plugin_host_t *))dlsym(so, JQ_PLUGIN_REGISTER_SYMBOL);
    if (abi == NULL || reg == NULL) {
        snprintf(err, errlen,
                 "--plugin %s: not a jobq plugin (it must define "
                 "%s and %s(), see include/jobq/handler.h)",
                 path, JQ_PLUGIN_ABI_SYMBOL, JQ_PLUGIN_REGISTER_SYMBOL);
        dlclose(so);
        return -1;
    }
    /* Each version only appends to the structs the consumer allocates, so
     * a plugin built for an older one still reads them right. */
    if (*abi < JQ_HANDLER_ABI_MIN || *abi > JQ_HANDLER_ABI_VERSION) {
        snprintf(err, errlen,
                 "--plugin %s: built for handler ABI version %u, "
                 "this jobq-consumer speaks versions %u to %u: rebuild it against "
                 "this jobq's jobq/handler.h",
                 path, *abi, JQ_HANDLER_ABI_MIN, JQ_HANDLER_ABI_VERSION);
        dlclose(so);
        return -1;
    }
    load_t l = {r, err, errlen, 0};
    jq_plugin_host_t host = {JQ_HANDLER_ABI_VERSION, path, on_add, &l};
    r->adding = path;
    int rc = reg(&host);
    if (l.failed) return -1;
    if (rc != 0) {
        snprintf(err, errlen, "--plugin %s: its %s() failed (returned %d)", path,
                 JQ_PLUGIN_REGISTER_SYMBOL, rc);
        return -1;
    }
    /* Never dlclose'd from here on: the registry points into it. */
    return 0;
}

/* The registry keeps each plugin's path as its handlers' origin, for as long
 * as they live: copies go here, never freed. */
static char paths[8192];
static size_t paths_used;

int jq_plugin_load_all(jq_registry_t *r, const char *list, char *err, size_t errlen) {
    const char *pos = list, *e;
    size_t n;
    while ((e = jq_opts_list_next(&pos, &n)) != NULL) {
        if (paths_used + n + 1 > sizeof(paths)) {
            snprintf(err, errlen, "--plugin: too many plugins");
            return -1;
        }
        char *path = paths + paths_used;
        memcpy(path, e, n);
        path[n] = '\0';
        paths_used += n + 1;
        if (load_one(r, path, err, errlen) != 0) return -1;
    }
    return 0;
}
