#!/bin/bash
# The image's HEALTHCHECK. With JOBQ_METRICS_ADDR set (the image sets
# 0.0.0.0:9100), asks the master's GET /healthz, which answers 200 only
# while Redis answers and every worker slot has a ready worker; bash's
# /dev/tcp does the request, so the image needs no HTTP client. With it
# unset, falls back to the processes: the master (PID 1) runs and has at
# least one worker.
addr=${JOBQ_METRICS_ADDR:-}
if [ -n "$addr" ]; then
    host=${addr%:*} port=${addr##*:}
    case "$host" in 0.0.0.0|"") host=127.0.0.1 ;; "[::]") host=::1 ;; esac
    host=${host#[} host=${host%]}
    exec 3<>"/dev/tcp/$host/$port" || exit 1
    printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
    IFS= read -r status <&3 || exit 1
    body=$(tr -d '\r' <&3 | sed '1,/^$/d')
    echo "$body"
    case "$status" in "HTTP/1."?" 200 "*) exit 0 ;; *) exit 1 ;; esac
fi
tr '\0' ' ' </proc/1/cmdline 2>/dev/null | grep -q jobq-consumer || exit 1
for f in /proc/[0-9]*/cmdline; do
    tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- '--worker-role=worker' && exit 0
done
exit 1
