/* sd_notify for the master. See notify.h. */

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/* Sends "<state>\nSTATUS=<status>". sd_notify returns 0 when
 * NOTIFY_SOCKET is unset: nothing to do, nothing to say. */
static void send_state(const char *state, const char *status) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s\nSTATUS=%s", state, status ? status : "");
    /* A status is a single line: sd_notify would read the rest as more
     * assignments. */
    for (char *p = strchr(msg, '\n') + 1; (p = strchr(p, '\n'));) *p = ' ';
    int rc = sd_notify(0, msg);
    if (rc < 0) jq_warn("sd_notify(%s): %s", state, strerror(-rc));
}

void jq_notify_ready(const char *status) { send_state("READY=1", status); }

void jq_notify_reloading(const char *status) { send_state("RELOADING=1", status); }

void jq_notify_stopping(const char *status) { send_state("STOPPING=1", status); }
