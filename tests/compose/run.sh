#!/bin/bash
# `make test-compose`: the compose stack (compose.yaml) with real
# containers. Builds the images, starts redis and three consumer replicas,
# enqueues 1,000 jobs from the host with python3-redis and checks that all
# end done on at least three hosts (containers); kills one consumer
# container (SIGKILL, no drain) while it holds jobs of a second batch and
# checks that none is lost; checks that the master, PID 1 in its
# container, reaps orphans and drains on SIGTERM. Everything is torn down
# (down -v) at the end, even on failure. Also: the dashboard service on
# the host's loopback, the rolling update of docs/DEPLOY.md as written
# there (the replica count read, not assumed), and the `tls` profile (a
# Redis speaking only TLS, certificates made at start, a consumer on
# rediss://).
#
# Uses a Docker engine if one answers; otherwise podman behind its
# Docker-compatible socket (scripts/container-engine.sh), driven by
# `docker compose` or, where that is missing, docker-compose 1.29.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
PROJECT=jobqtest
t0=$(date +%s)

say() { echo "compose-test: [$(( $(date +%s) - t0 ))s] $*"; }
fail() { echo "compose-test: FAIL: $*" >&2; exit 1; }

# A failure inside "$(...)" would not stop `eval` (set -e sees eval's status).
engine=$(sh scripts/container-engine.sh start) || fail "no container engine to run the stack (the reason is above)"
eval "$engine"
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -p "$PROJECT")
else
    COMPOSE=(docker-compose -p "$PROJECT")
fi
if [ "$JQ_ENGINE" = docker ]; then ENGINE=docker; else ENGINE=podman; fi
compose() { "${COMPOSE[@]}" "$@"; }

# The stack's settings: redis on a free loopback port, one CPU per
# consumer (so `--workers auto` must say 1 on any host), and a short
# visibility timeout so that the jobs of a killed container come back in
# seconds rather than 30.
JOBQ_REDIS_PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
JOBQ_PROMETHEUS_PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
JOBQ_DASHBOARD_PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export JOBQ_REDIS_PORT JOBQ_PROMETHEUS_PORT JOBQ_DASHBOARD_PORT JOBQ_CONSUMER_CPUS=1 JOBQ_VISIBILITY_MS=3000 JOBQ_TAG=compose-test
jobs() { $PY tests/compose/jobs.py "$JOBQ_REDIS_PORT" "$@"; }

# The consumers' hostnames into hosts, in the order of ids: the jobs'
# records name the host (container) that ran them.
read_hosts() {
    hosts=()
    for id in "${ids[@]}"; do hosts+=("$($ENGINE inspect -f '{{.Config.Hostname}}' "$id")"); done
}

# Waits until the engine reports every consumer of ids healthy (the
# image's HEALTHCHECK), failing at $deadline; $1 ends the failure message.
wait_healthy() {
    for id in "${ids[@]}"; do
        until [ "$($ENGINE inspect -f '{{.State.Health.Status}}' "$id")" = healthy ]; do
            [ $SECONDS -lt $deadline ] || fail "consumer $id is not healthy${1:-}"
            sleep 1
        done
    done
}

status=1
cleanup() {
    if [ $status -ne 0 ]; then
        echo "compose-test: the stack's last log lines:" >&2
        compose logs --no-color --tail=40 >&2 2>&1 || true
    fi
    compose --profile monitoring --profile tls down -v -t 10 >/dev/null 2>&1 || compose --profile monitoring --profile tls down -v -t 10 || true
    sh scripts/container-engine.sh stop || true
    say "done (exit $status)"
}
trap 'status=$?; cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

compose --profile monitoring --profile tls down -v -t 5 >/dev/null 2>&1 || true
say "building the images ($ENGINE, ${COMPOSE[*]})"
compose build -q consumer
say "starting redis and 3 consumers"
compose up -d --scale consumer=3
mapfile -t ids < <(compose ps -q consumer)
[ ${#ids[@]} -eq 3 ] || fail "expected 3 consumer containers, got ${#ids[@]}"
read_hosts

# Every replica's master is PID 1, sized by the container's CPU limit.
for id in "${ids[@]}"; do
    pid1=$($ENGINE exec "$id" cat /proc/1/cmdline | tr '\0' ' ')
    case "$pid1" in jobq-consumer*) ;; *) fail "PID 1 of $id is '$pid1', not jobq-consumer" ;; esac
done
deadline=$((SECONDS + 60))
until [ "$(compose logs --no-color consumer | grep -c 'master pid 1: 1 workers x 1 cpu threads (1 usable cpus)')" -ge 3 ]; do
    [ $SECONDS -lt $deadline ] || fail "the masters did not all say '1 workers x 1 cpu threads (1 usable cpus)'"
    sleep 1
done
say "3 masters as PID 1, each with 1 worker for its 1-CPU limit"
until [ "$(jobs worker-hosts | wc -l)" -ge 3 ]; do
    [ $SECONDS -lt $deadline ] || fail "not 3 hosts heartbeating: $(jobs worker-hosts | tr '\n' ' ')"
    sleep 1
done
wait_healthy
for id in "${ids[@]}"; do echo "    ${id:0:12} /healthz: $($ENGINE exec "$id" jobq-healthcheck)"; done
say "3 consumers up and healthy"

# The dashboard service: published on the host's loopback, and only there.
until curl -sf --max-time 5 "http://127.0.0.1:$JOBQ_DASHBOARD_PORT/" | grep '<title>jobq dashboard</title>' >/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "no dashboard on 127.0.0.1:$JOBQ_DASHBOARD_PORT"
    sleep 1
done
bound=$($ENGINE port "$(compose ps -q dashboard)" 9100)
case "$bound" in 127.0.0.1:"$JOBQ_DASHBOARD_PORT") ;; *) fail "dashboard published on '$bound', not 127.0.0.1:$JOBQ_DASHBOARD_PORT" ;; esac
say "dashboard on $bound"

# Batch 1: 1,000 jobs from the host, all done, spread over the containers.
jobs enqueue b1 1000 mix
jobs wait b1 1000 180 || fail "batch 1 did not finish"
ran=$(jobs hosts b1 1000)
echo "$ran" | sed 's/^/    ran on /'
[ "$(echo "$ran" | wc -l)" -ge 3 ] || fail "batch 1 ran on fewer than 3 hosts"
[ "$(jobs worker-hosts | wc -l)" -ge 3 ] || fail "fewer than 3 hosts in the worker hashes"

# Prometheus (the monitoring profile) finds the three replicas through DNS
# and scrapes each master's /metrics.
compose --profile monitoring up -d prometheus
$PY - "$JOBQ_PROMETHEUS_PORT" <<'PY' || fail "Prometheus does not scrape the 3 consumers"
import json, sys, time, urllib.request
url = "http://127.0.0.1:%s/api/v1/targets" % sys.argv[1]
deadline, up = time.time() + 90, []
while time.time() < deadline:
    try:
        targets = json.load(urllib.request.urlopen(url, timeout=5))["data"]["activeTargets"]
        up = sorted(t["labels"]["instance"] for t in targets
                    if t["labels"].get("job") == "jobq" and t["health"] == "up")
        if len(up) >= 3:
            break
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(1)
print("    prometheus scrapes %d consumers: %s" % (len(up), " ".join(up)))
sys.exit(0 if len(up) >= 3 else 1)
PY
say "Prometheus found and scraped the 3 consumers"

# PID 1 reaps orphans: a process left by an exec is handed to the master
# when its shell exits, and must not stay a zombie.
$ENGINE exec "${ids[0]}" sh -c 'sleep 0.2 & exit 0'
deadline=$((SECONDS + 20))
until compose logs --no-color consumer | grep 'reaped orphan process' >/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "no orphan reaped"
    sleep 0.2
done
zombies=$($ENGINE exec "${ids[0]}" sh -c 'cat /proc/[0-9]*/stat 2>/dev/null' | awk '$3 == "Z"' | wc -l)
[ "$zombies" -eq 0 ] || fail "$zombies zombie processes in ${ids[0]:0:12}"
say "orphans reaped by PID 1"

# SIGTERM drains: a container stopped while it runs jobs (4 s each)
# finishes them itself, and its master exits 0.
jobs enqueue b3 30 slower
jobs holder 30 1 "${hosts[1]}" >/dev/null || fail "${ids[1]:0:12} took no job of batch 3"
$ENGINE stop -t 40 "${ids[1]}" >/dev/null
code=$($ENGINE inspect -f '{{.State.ExitCode}}' "${ids[1]}")
[ "$code" = 0 ] || fail "consumer ${ids[1]:0:12} exited with status $code after SIGTERM"
$ENGINE logs "${ids[1]}" 2>&1 | grep 'all workers exited; master exiting' >/dev/null ||
    fail "${ids[1]:0:12}'s master did not log its drained exit"
jobs wait b3 30 60 || fail "batch 3 did not finish"
jobs hosts b3 30 | grep "^${hosts[1]} " >/dev/null ||
    fail "the stopped container finished none of the jobs it held"
say "SIGTERM: ${ids[1]:0:12} finished its running jobs and exited 0"
compose start consumer >/dev/null 2>&1

# The rolling update of docs/DEPLOY.md, its loop as written there (with
# this test's project): one replica at a time, the count read first.
n=$(compose ps -q consumer | wc -l)
[ "$n" -eq 3 ] || fail "expected 3 consumers before the rolling update, got $n"
for c in $(compose ps -q consumer); do
    $ENGINE stop "$c" >/dev/null && $ENGINE rm "$c" >/dev/null
    compose up -d --no-deps --no-recreate --scale consumer="$n" consumer
done
mapfile -t new < <(compose ps -q consumer)
[ ${#new[@]} -eq 3 ] || fail "expected 3 consumers after the rolling update, got ${#new[@]}"
for id in "${new[@]}"; do
    for old in "${ids[@]}"; do [ "$id" != "$old" ] || fail "consumer ${id:0:12} was not replaced"; done
done
ids=("${new[@]}")
read_hosts
deadline=$((SECONDS + 60))
wait_healthy " after the rolling update"
say "rolling update: 3 consumers replaced one at a time"

# Batch 2: slow jobs; one container is killed (SIGKILL, no drain) while it
# holds some, and none may be lost.
jobs enqueue b2 600 slow
read -r vhost held < <(jobs holder 30 20 "${hosts[@]}") || fail "no consumer took jobs of batch 2"
victim=""
for i in "${!ids[@]}"; do [ "${hosts[$i]}" = "$vhost" ] && victim=${ids[$i]}; done
$ENGINE kill "$victim" >/dev/null
say "killed container ${victim:0:12} while it held $held jobs of batch 2"
jobs wait b2 600 180 || fail "jobs of batch 2 were lost with the killed container"
[ "$(jobs pending)" = 0 ] || fail "entries still pending in the group: $(jobs pending)"
jobs hosts b2 600 | sed 's/^/    ran on /'
say "batch 2: every job done, nothing left pending"

# The tls profile: certificates made at start, a Redis that speaks only
# TLS, a consumer on rediss:// that runs a job enqueued over TLS.
compose --profile tls build -q tls-certs
compose --profile tls up -d consumer-tls
tls=$(compose --profile tls ps -q consumer-tls)
[ -n "$tls" ] || fail "no consumer-tls container"
deadline=$((SECONDS + 90))
until out=$($ENGINE exec "$tls" jobq enqueue echo '"over tls"' --wait=10 2>&1) && echo "$out" | grep '"state":"done","result":"over tls"' >/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "no job done over TLS: $out"
    sleep 1
done
echo "    $out"
compose --profile tls logs --no-color consumer-tls | grep 'rediss://redis-tls:6379' >/dev/null ||
    fail "consumer-tls did not log its rediss:// URL"
if $ENGINE exec "$(compose --profile tls ps -q redis-tls)" redis-cli -h redis-tls ping 2>/dev/null | grep PONG >/dev/null; then
    fail "redis-tls answered a plain-text client"
fi
say "tls profile: a job done over rediss://, plain text refused"
status=0
echo "compose-test: 1 passed, 0 failed"
