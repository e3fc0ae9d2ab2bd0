/* A plugin built for handler ABI version 1 (before jq_task_yield): a
 * consumer of version 2 must still load and run it, since version 2 only
 * appended to struct jq_task. It uses no field added after version 1. */

#include <string.h>
#include <jobq/handler.h>

const unsigned jobq_plugin_abi = 1;

static int old_run(jq_task_t *t) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &t->result, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, "abi1", 4);
    return 0;
}

static const jq_handler_t old = {.name = "abi1", .kind = JQ_KIND_CPU, .run = old_run};

int jobq_plugin_register(jq_plugin_host_t *host) { return jq_plugin_add(host, &old); }
