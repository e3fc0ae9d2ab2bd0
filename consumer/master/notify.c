/* systemd's notify protocol for the master. See notify.h.
 *
 * No libsystemd: linked, it brought libgcrypt, libgpg-error, liblzma,
 * libzstd, liblz4 and libcap into every worker too (0.8 MiB of an idle
 * worker's RSS) for one datagram that only the master sends. The protocol
 * is what sd_notify(3) documents as stable, and as meant to be
 * reimplemented: "READY=1\n..." in one datagram to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, a path, or an abstract name when it starts with '@'. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

/* Sends msg to $NOTIFY_SOCKET. Returns 1 when sent, 0 when the variable is
 * unset (not under systemd, or not Type=notify), -errno on failure. */
static int notify_send(const char *msg) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
    if (len > sizeof sa.sun_path) return -EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: no terminating NUL either */
    else if (len == sizeof sa.sun_path)
        return -EINVAL; /* a path needs room for its NUL */

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}

/* Sends "<state>\nSTATUS=<status>". */
static void send_state(const char *state, const char *status) {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s\nSTATUS=%s", state, status ? status : "");
    /* A status is a single line: systemd would read the rest as more
     * assignments. */
    for (char *p = strchr(msg, '\n') + 1; (p = strchr(p, '\n'));) *p = ' ';
    int rc = notify_send(msg);
    if (rc < 0) jq_warn("sd_notify(%s): %s", state, strerror(-rc));
}

void jq_notify_ready(const char *status) { send_state("READY=1", status); }

void jq_notify_reloading(const char *status) { send_state("RELOADING=1", status); }

void jq_notify_stopping(const char *status) { send_state("STOPPING=1", status); }
