/* The handler registry and the two calls every handler makes on its task
 * (see handlers.h). The table is small (JQ_HANDLERS_MAX) and looked up once
 * per job, so a linear scan is all it needs. */

#include "handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void jq_registry_init(jq_registry_t *r) {
    memset(r, 0, sizeof *r);
}

int jq_registry_add(jq_registry_t *r, const jq_handler_t *h, char *err,
                    size_t errlen) {
    if (h == NULL || h->name == NULL || h->name[0] == '\0') {
        snprintf(err, errlen, "handler has no name");
        return -1;
    }
    if (h->kind != JQ_KIND_CPU && h->kind != JQ_KIND_IO) {
        snprintf(err, errlen, "handler %s: unknown kind %d", h->name,
                 (int)h->kind);
        return -1;
    }
    if (h->kind == JQ_KIND_CPU && h->run == NULL) {
        snprintf(err, errlen, "handler %s: a cpu handler needs run()",
                 h->name);
        return -1;
    }
    if (h->kind == JQ_KIND_IO && h->start == NULL) {
        snprintf(err, errlen, "handler %s: an io handler needs start()",
                 h->name);
        return -1;
    }
    if (jq_registry_find(r, h->name, strlen(h->name)) != NULL) {
        snprintf(err, errlen, "handler %s: name already registered",
                 h->name);
        return -1;
    }
    if (r->n >= JQ_HANDLERS_MAX) {
        snprintf(err, errlen, "handler %s: registry full (%d handlers)",
                 h->name, JQ_HANDLERS_MAX);
        return -1;
    }
    r->h[r->n++] = h;
    return 0;
}

const jq_handler_t *jq_registry_find(const jq_registry_t *r, const char *name,
                                     size_t len) {
    /* name comes straight from a stream entry and is not NUL-terminated. */
    for (int i = 0; i < r->n; i++) {
        const char *hn = r->h[i]->name;
        if (strlen(hn) == len && memcmp(hn, name, len) == 0)
            return r->h[i];
    }
    return NULL;
}

int jq_task_fail(jq_task_t *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
    t->failed = 1;
    return -1;
}

void jq_task_done(jq_task_t *t) {
    t->done_cb(t);
}
