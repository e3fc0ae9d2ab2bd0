/* A plugin that registers "hello", as the example plugin does: loaded with
 * it, the consumer must stop at start and name both. */

#include <jobq/handler.h>

JQ_PLUGIN_DECLARE_ABI;

static int dup_start(jq_task_t *t) {
    jq_task_done(t);
    return 0;
}

static const jq_handler_t dup = {.name = "hello", .kind = JQ_KIND_IO, .start = dup_start};

int jobq_plugin_register(jq_plugin_host_t *host) { return jq_plugin_add(host, &dup); }
