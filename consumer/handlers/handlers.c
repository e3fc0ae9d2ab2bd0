/* The one place that decides which handlers a consumer has (handlers.h):
 * each kind registers itself into the registry; this file only calls them
 * in order, so that a plugin cannot take a built-in's name and the error
 * names the first culprit. */

#include "handlers.h"

#include "builtins.h"
#include "exec.h"
#include "http.h"
#include "options.h"
#include "plugin.h"
#include "procpool.h"

int jq_handlers_setup(jq_registry_t *r, const jq_options_t *o, char *err, size_t errlen) {
    r->adding = "built-in";
    if (jq_builtins_register(r, o->test_handlers, err, errlen) != 0) return -1;
    if (jq_plugin_load_all(r, o->plugins, err, errlen) != 0) return -1;
    if (jq_exec_register(r, o, err, errlen) != 0) return -1;
    if (jq_http_register(r, o, err, errlen) != 0) return -1;
    if (jq_procpool_register(r, o, err, errlen) != 0) return -1;
    r->adding = NULL;
    return 0;
}

int jq_handlers_start(uv_loop_t *loop) { return jq_procpool_start(loop); }

void jq_handlers_stop(void) { jq_procpool_stop(); }
