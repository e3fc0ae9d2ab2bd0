#!/bin/sh
# The image's HEALTHCHECK: healthy while the master (PID 1) runs, and has at
# least one worker process (a master whose workers all keep crashing is
# respawning them with backoff and serves nothing).
[ -r /proc/1/cmdline ] && tr '\0' ' ' </proc/1/cmdline | grep -q jobq-consumer || exit 1
for f in /proc/[0-9]*/cmdline; do
    tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- '--worker-role=worker' && exit 0
done
exit 1
