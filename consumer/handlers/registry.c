/* The handler registry (registry.h). The table is small (JQ_HANDLERS_MAX)
 * and looked up once per job, so a linear scan is all it needs. */

#include "registry.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"

void jq_registry_init(jq_registry_t *r) { memset(r, 0, sizeof *r); }

static int check_handler(const jq_handler_t *h, char *err, size_t errlen) {
    if (h == NULL || h->name == NULL || h->name[0] == '\0') {
        snprintf(err, errlen, "handler has no name");
        return -1;
    }
    /* Job types are written by producers and shown by every tool: the same
     * alphabet as queue names and job ids keeps them printable and safe. */
    if (!jq_name_valid(h->name, strlen(h->name))) {
        snprintf(err, errlen,
                 "handler '%.128s': bad name (want 1 to %d bytes of "
                 "[A-Za-z0-9_.:-])",
                 h->name, JQ_NAME_MAX);
        return -1;
    }
    if (h->kind != JQ_KIND_CPU && h->kind != JQ_KIND_IO) {
        snprintf(err, errlen, "handler %s: unknown kind %d", h->name, (int)h->kind);
        return -1;
    }
    if (h->kind == JQ_KIND_CPU && h->run == NULL) {
        snprintf(err, errlen, "handler %s: a cpu handler needs run()", h->name);
        return -1;
    }
    if (h->kind == JQ_KIND_IO && h->start == NULL) {
        snprintf(err, errlen, "handler %s: an io handler needs start()", h->name);
        return -1;
    }
    return 0;
}

int jq_registry_add(jq_registry_t *r, const jq_handler_t *h, char *err, size_t errlen) {
    if (check_handler(h, err, errlen) != 0) return -1;
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->h[i]->name, h->name) == 0) {
            snprintf(err, errlen, "handler %s: name already registered (by %s)", h->name,
                     r->origin[i] ? r->origin[i] : "built-in");
            return -1;
        }
    if (r->n >= JQ_HANDLERS_MAX) {
        snprintf(err, errlen, "handler %s: registry full (%d handlers)", h->name, JQ_HANDLERS_MAX);
        return -1;
    }
    r->origin[r->n] = r->adding;
    r->h[r->n++] = h;
    return 0;
}

const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name, size_t len) {
    /* name comes straight from a stream entry and is not NUL-terminated. */
    for (int i = 0; i < r->n; i++) {
        const char *hn = r->h[i]->name;
        if (strlen(hn) == len && memcmp(hn, name, len) == 0) return r->h[i];
    }
    return NULL;
}
