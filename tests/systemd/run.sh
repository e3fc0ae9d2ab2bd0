#!/bin/bash
# `make test-systemd`: the installed jobq-consumer.service under a real
# systemd. `make install` into a staging tree, an image of Debian 12 with
# systemd, redis-server and the libraries the binaries need, the staged
# files on top; then systemd runs as PID 1 in a podman container
# (--systemd=always: the Docker API has no such mode, so this test drives
# podman itself) and the test checks, with redis-cli as the producer:
#   - Type=notify: the unit becomes active, which systemd only does after
#     the master's READY=1; DynamicUser: the master does not run as root;
#   - jobs enqueued with redis-cli end done;
#   - `systemctl reload` (SIGHUP): every worker is replaced, jobs still run;
#   - `systemctl stop` while jobs run: they finish (drain), the service
#     stops cleanly (Result=success), nothing is left pending;
#   - Redis wants a password, and the journal never shows it.
# The container is removed at the end, even on failure; the image stays
# (rebuilt from the same layers, the next run is quick).
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
say() { echo "systemd-test: [$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "systemd-test: FAIL: $*" >&2; exit 1; }

# A failure inside "$(...)" would not stop `eval` (set -e sees eval's status).
engine=$(sh scripts/container-engine.sh base) || fail "no podman to run the test (the reason is above)"
eval "$engine"
IMAGE=localhost/jobq-systemd-test:latest
NAME=jobq-systemd-test-$$
PW="s3cret-$$-$RANDOM"
ctx=$(mktemp -d /var/tmp/jobq-systemd.XXXXXX)

status=1
cleanup() {
    if [ $status -ne 0 ] && podman container exists "$NAME" 2>/dev/null; then
        echo "systemd-test: the unit's status and journal:" >&2
        podman exec "$NAME" systemctl status jobq-consumer --no-pager -l >&2 2>&1 || true
        podman exec "$NAME" journalctl -u jobq-consumer --no-pager -n 60 >&2 2>&1 || true
    fi
    podman rm -f -t 5 "$NAME" >/dev/null 2>&1 || true
    rm -rf "$ctx"
    say "done (exit $status)"
}
trap 'status=$?; cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

say "make install into a staging tree"
make -s install DESTDIR="$ctx/root" PREFIX=/usr >/dev/null
# What the binaries link or open with dlopen, as docker/Dockerfile has it.
pkgs=$(sh scripts/runtime-packages.sh bin/jobq-consumer bin/jobq | tr '\n' ' ')
mkdir -p "$ctx/root/etc/default"
cat >"$ctx/root/etc/default/jobq" <<EOF
JOBQ_REDIS_URL=redis://:$PW@127.0.0.1:6379
JOBQ_WORKERS=2
JOBQ_SHUTDOWN_TIMEOUT_MS=20000
EOF
cat >"$ctx/Containerfile" <<EOF
FROM debian:bookworm-slim
RUN apt-get update \\
    && apt-get install -y --no-install-recommends systemd systemd-sysv redis-server $pkgs \\
    && rm -rf /var/lib/apt/lists/*
COPY root/ /
RUN ldconfig && systemctl enable jobq-consumer.service \\
    && echo "requirepass $PW" >>/etc/redis/redis.conf
CMD ["/sbin/init"]
EOF
say "building the image (Debian 12, systemd, redis-server, $pkgs)"
podman build --quiet --network=host -t "$IMAGE" "$ctx" >/dev/null

say "booting systemd in a container"
# Privileged: systemd sets up the unit's sandbox (ProtectSystem=,
# PrivateTmp=, DynamicUser=...) with mount namespaces, which an
# unprivileged container may not create.
podman run -d --name "$NAME" --privileged --systemd=always "$IMAGE" >/dev/null
cx() { podman exec -i "$NAME" "$@"; }
rcli() { cx redis-cli -a "$PW" --no-auth-warning "$@"; }
wait_for() { # what, seconds, command...
    local what=$1 secs=$2 i=0
    shift 2
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt $((secs * 5)) ] && fail "$what: not within $secs s"
        sleep 0.2
    done
}
prop() { cx systemctl show jobq-consumer -p "$1" --value; }
is_active() { [ "$(prop ActiveState)" = active ]; }
processed() { rcli HGET 'jobq:{default}:stats' processed | tr -d '\r'; }
processed_is() { [ "$(processed)" = "$1" ]; }
workers() { cx sh -c 'cat /proc/$(systemctl show jobq-consumer -p MainPID --value)/task/*/children' | tr ' ' '\n' | grep . | sort; }
enqueue() { # n, fields...
    local n=$1 i
    shift
    for i in $(seq "$n"); do echo "XADD jobq:{default}:stream * $*"; done | rcli >/dev/null
}

wait_for "systemd up" 60 sh -c "podman exec $NAME systemctl is-system-running --wait | grep -Eq 'running|degraded'"
# Type=notify: active only once the master said READY=1, i.e. every
# worker reached Redis (with the password) and serves.
wait_for "jobq-consumer active (READY=1)" 60 is_active
main=$(prop MainPID)
uid=$(cx stat -c %u "/proc/$main")
[ "$uid" != 0 ] || fail "the master runs as root (DynamicUser= expected a user of its own)"
[ "$(workers | wc -l)" = 2 ] || fail "expected 2 workers under the master, got: $(workers | tr '\n' ' ')"
say "active: master $main as uid $uid, workers $(workers | tr '\n' ' ')"

enqueue 20 type noop
wait_for "20 noop jobs (redis-cli) done" 30 processed_is 20
say "20 jobs enqueued with redis-cli are done"

before=$(workers)
cx systemctl reload jobq-consumer
renewed() { [ -z "$(comm -12 <(echo "$before") <(workers))" ] && [ "$(workers | wc -l)" = 2 ] && is_active; }
wait_for "every worker replaced after systemctl reload" 60 renewed
enqueue 10 type noop
wait_for "10 more jobs done after the reload" 30 processed_is 30
say "reload: workers $(echo $before) replaced by $(workers | tr '\n' ' '); jobs still run"

# One line per command to redis-cli: its own quoting keeps the JSON whole.
enqueue 6 type sleep enc json payload "'{\"ms\":3000}'"
pending6() { [ "$(rcli XPENDING 'jobq:{default}:stream' workers | head -1 | tr -d '\r')" = 6 ]; }
wait_for "6 sleep jobs running" 30 pending6
cx systemctl stop jobq-consumer
[ "$(prop ActiveState)" = inactive ] || fail "not inactive after stop: $(prop ActiveState)"
[ "$(prop Result)" = success ] || fail "stop: Result=$(prop Result) (a kill or a timeout)"
[ "$(prop ExecMainStatus)" = 0 ] || fail "the master exited $(prop ExecMainStatus)"
[ "$(processed)" = 36 ] || fail "drain: processed $(processed), want 36 (the 6 running jobs finished)"
[ "$(rcli XPENDING 'jobq:{default}:stream' workers | head -1 | tr -d '\r')" = 0 ] || fail "entries left pending after the drain"
say "stop: the 6 running jobs finished, Result=success, exit 0, nothing pending"

journal=$(cx journalctl -u jobq-consumer --no-pager -o cat)
grep -q "$PW" <<<"$journal" && fail "the journal shows the Redis password"
grep -q "draining" <<<"$journal" || fail "the journal has no drain line: $(tail -5 <<<"$journal")"
say "the journal never shows the password ($(wc -l <<<"$journal") lines)"
status=0
