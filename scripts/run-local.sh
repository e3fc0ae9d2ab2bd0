#!/bin/sh
# `make run`: runs the consumer in the foreground against the configured
# Redis (JOBQ_REDIS_URL, default redis://127.0.0.1:6379). When nothing
# answers there and the URL is local, starts a redis-server of our own under
# .run/redis (append-only, so jobs survive a restart) and stops it on exit.
# Extra consumer flags: make run RUN_ARGS="--workers 2 --queues a,b".
set -eu
cd "$(dirname "$0")/.."
URL="${JOBQ_REDIS_URL:-redis://127.0.0.1:6379}"
hostport=$(printf '%s' "$URL" | sed -E 's#^redis://([^@]*@)?##; s#/.*$##')
host=${hostport%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=6379
started=""
if ! redis-cli -u "$URL" PING >/dev/null 2>&1; then
    case "$host" in
    127.0.0.1|localhost|::1)
        mkdir -p .run/redis
        echo "run: no Redis at $URL; starting one in .run/redis on port $port" >&2
        redis-server --port "$port" --bind 127.0.0.1 --dir "$PWD/.run/redis" \
            --appendonly yes --daemonize yes --pidfile "$PWD/.run/redis/redis.pid" \
            --logfile "$PWD/.run/redis/redis.log"
        started=1
        i=0
        until redis-cli -p "$port" PING >/dev/null 2>&1; do
            i=$((i + 1)); [ $i -gt 100 ] && { echo "run: redis-server did not start" >&2; exit 1; }
            sleep 0.05
        done
        ;;
    *)
        echo "run: no Redis answers at $URL (not local: start it yourself)" >&2
        exit 1
        ;;
    esac
fi
stop_redis() {
    [ -n "$started" ] && [ -f .run/redis/redis.pid ] && kill "$(cat .run/redis/redis.pid)" 2>/dev/null || true
}
trap stop_redis EXIT
echo "run: bin/jobq-consumer --redis $URL $*  (Ctrl-C to stop)" >&2
bin/jobq-consumer --redis "$URL" "$@" &
pid=$!
# Ctrl-C reaches the consumer from the terminal by itself; a TERM sent to
# this script is passed on. Either way, wait until the consumer has drained.
trap ':' INT
trap 'kill -TERM $pid 2>/dev/null' TERM
status=0
while kill -0 $pid 2>/dev/null; do
    wait $pid && status=0 || status=$?
done
exit $status
