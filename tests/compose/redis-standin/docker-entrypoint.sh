#!/bin/sh
# As the official image's entrypoint: flags alone mean redis-server, the
# data directory is handed to the redis user, and the server drops root.
set -e
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
    shift
    [ "$(id -u)" = 0 ] && chown -R redis:redis /data
    set -- redis-server --protected-mode no "$@"
    [ "$(id -u)" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
