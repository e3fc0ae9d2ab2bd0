#ifndef JQ_PLUGIN_H
#define JQ_PLUGIN_H

/* Loading users' C plugins (include/jobq/handler.h): dlopen each path,
 * check its ABI version, let it register its handlers into a registry. A
 * loaded plugin is never unloaded: its handlers live as long as the
 * process. */

#include <stddef.h>

#include "registry.h"

/* Loads every plugin of a --plugin list (entries one per line, see
 * jq_opts_list_next) into r. Returns 0, or -1 with err naming the plugin
 * and the problem: cannot be opened, not a jobq plugin, built for another
 * ABI version, its register function failed, or one of its names is taken
 * (and by whom). */
int jq_plugin_load_all(jq_registry_t *r, const char *list, char *err, size_t errlen);

#endif
