/* A plugin that claims another handler ABI version: the consumer must refuse
 * it at start without calling it. */

#include <stdlib.h>
#include <jobq/handler.h>

const unsigned jobq_plugin_abi = JQ_HANDLER_ABI_VERSION + 41;

int jobq_plugin_register(jq_plugin_host_t *host) {
    (void)host;
    abort(); /* never reached: the version is checked first */
}
