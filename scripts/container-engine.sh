#!/bin/sh
# A container engine for the compose test (tests/compose/run.sh).
#
#   eval "$(sh scripts/container-engine.sh start)"   # sets DOCKER_HOST, JQ_ENGINE
#   sh scripts/container-engine.sh stop               # stops what start started
#   eval "$(sh scripts/container-engine.sh base)"    # podman settings + base image only
#
# When `docker info` answers, a real engine runs: start prints only
# JQ_ENGINE=docker and touches nothing. Otherwise (no Docker daemon, as on
# our CI machines) it brings up podman with runc behind podman's
# Docker-compatible socket, which docker-compose drives like a Docker daemon:
#   - its own containers.conf (runc, cgroupfs, nofile/nproc limits: crun
#     fails here on rlimits and hybrid cgroups), given through
#     CONTAINERS_CONF so that no system file is edited; and netavark with
#     aardvark-dns as the network backend, since Debian 12 has no CNI
#     dnsname plugin and services must find each other by name;
#   - `podman system service` in the background on /run/podman/podman.sock;
#   - a loop that runs the containers' healthchecks: podman schedules them
#     with systemd timers, and without systemd (a container, CI) they never
#     run, so `depends_on: condition: service_healthy` would wait forever;
#   - the images compose.yaml names, since no image registry is reachable:
#     debian:bookworm-slim from debootstrap --variant=minbase, and a
#     stand-in for redis:7 built from it with Debian's redis-server
#     (tests/compose/redis-standin), and one for prom/prometheus from
#     Debian's prometheus. compose.yaml stays what a user runs.
# The debootstrap tarball is cached in $JQ_COMPOSE_CACHE
# (/var/cache/jobq-compose) and the images stay in podman's store, so only
# the first run pays for them. Needs root. Logs go to stderr; stdout carries
# only the variables for eval.
set -eu
cd "$(dirname "$0")/.."
CACHE=${JQ_COMPOSE_CACHE:-/var/cache/jobq-compose}
STATE=/run/jobq-compose
SOCK=/run/podman/podman.sock
MIRROR=${JQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=docker.io/library/debian:bookworm-slim
REDIS=docker.io/library/redis:7
# The tag compose.yaml's monitoring profile names.
PROMETHEUS=docker.io/prom/prometheus:$(sed -n 's|^ *image: prom/prometheus:||p' compose.yaml)
export CONTAINERS_CONF="$STATE/containers.conf"

log() { echo "container-engine: $*" >&2; }

# Exits naming the first of the tools ($@) that is missing, before podman
# starts: podman reports a missing helper of netavark's as "netavark: No
# such file or directory", naming neither the helper nor the package.
need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        case "$tool" in
        iptables) why="netavark, podman's network backend, runs it to set up container networks" ;;
        */netavark | */aardvark-dns) why="podman's network backend" ;;
        *) why="" ;;
        esac
        log "missing $tool${why:+ ($why)}: scripts/deps.sh test installs it"
        exit 1
    done
    # Installed is not enough: iptables fails where the kernel has no
    # netfilter for it (a container without NET_ADMIN, say).
    case " $* " in *" iptables "*)
        if ! out=$(iptables -w -n -L 2>&1 >/dev/null); then
            log "iptables does not work here, and netavark needs it: $out"
            exit 1
        fi ;;
    esac
}

write_conf() {
    mkdir -p "$STATE"
    cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"

[network]
network_backend = "netavark"
CONF
}

# The API answers on the socket (a service of ours or someone's).
socket_up() {
    [ -S "$SOCK" ] && curl -sf --max-time 5 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1
}

start_service() {
    if socket_up; then
        log "podman service already answers on $SOCK; using it"
        return
    fi
    mkdir -p /run/podman
    rm -f "$STATE/podman.pid"
    setsid podman system service --time=0 "unix://$SOCK" \
        </dev/null >>"$STATE/podman-service.log" 2>&1 &
    echo $! >"$STATE/podman.pid"
    i=0
    until socket_up; do
        i=$((i + 1))
        if [ $i -gt 150 ]; then
            log "podman system service did not answer on $SOCK; its log:"
            tail -20 "$STATE/podman-service.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    log "podman system service started (pid $(cat "$STATE/podman.pid")) on $SOCK"
}

# Runs every running container's HEALTHCHECK every 2 s (podman records
# the result; containers without one answer with an error, ignored). The
# containers' own intervals are not honoured: good enough for a test.
start_health_loop() {
    if [ -f "$STATE/health.pid" ] && kill -0 "$(cat "$STATE/health.pid")" 2>/dev/null; then return; fi
    setsid sh -c 'while :; do
        for c in $(podman ps -q 2>/dev/null); do podman healthcheck run "$c" >/dev/null 2>&1; done
        sleep 2
    done' </dev/null >/dev/null 2>&1 &
    echo $! >"$STATE/health.pid"
}

# debian:bookworm-slim as debootstrap's minbase plus the sources and
# dpkg/apt habits of the official image (no docs, no package cache).
base_image() {
    if podman image exists "$BASE"; then return; fi
    tarball="$CACHE/debian-bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        mkdir -p "$CACHE"
        dir=$(mktemp -d /var/tmp/jobq-debootstrap.XXXXXX)
        log "debootstrap --variant=minbase bookworm (about a minute, once)"
        if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
            log "debootstrap failed; the end of its log:"
            tail -20 "$CACHE/debootstrap.log" >&2
            rm -rf "$dir"
            exit 1
        fi
        rm -f "$dir/etc/apt/sources.list"
        cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
        cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
            "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/info
        tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$dir"
    fi
    log "importing $BASE from $tarball"
    podman import --quiet "$tarball" "$BASE" >/dev/null
}

redis_image() {
    if podman image exists "$REDIS"; then return; fi
    log "building the stand-in for $REDIS (Debian's redis-server)"
    podman build --quiet --network=host -t "$REDIS" tests/compose/redis-standin >/dev/null
}

prometheus_image() {
    if podman image exists "$PROMETHEUS"; then return; fi
    log "building the stand-in for $PROMETHEUS (Debian's prometheus)"
    podman build --quiet --network=host -t "$PROMETHEUS" tests/compose/prometheus-standin >/dev/null
}

start() {
    if docker info >/dev/null 2>&1; then
        log "a Docker engine answers; using it as it is"
        echo "JQ_ENGINE=docker; export JQ_ENGINE"
        return
    fi
    need podman runc /usr/lib/podman/netavark /usr/lib/podman/aardvark-dns iptables debootstrap curl
    write_conf
    start_service
    start_health_loop
    base_image
    redis_image
    prometheus_image
    echo "DOCKER_HOST=unix://$SOCK; CONTAINERS_CONF=$CONTAINERS_CONF; JQ_ENGINE=podman; export DOCKER_HOST CONTAINERS_CONF JQ_ENGINE"
}

# Stops the service only if start started it; a service that was already
# there belongs to someone else.
stop_pidfile() {
    [ -f "$STATE/$1.pid" ] || return 0
    pid=$(cat "$STATE/$1.pid")
    rm -f "$STATE/$1.pid"
    # The health loop is a session leader (setsid): end its whole group.
    [ "$1" = health ] && target="-$pid" || target="$pid"
    kill -- "$target" 2>/dev/null || return 0
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 50 ] && { kill -9 -- "$target" 2>/dev/null || true; break; }
        sleep 0.2
    done
    log "$2 (pid $pid) stopped"
}

stop() {
    stop_pidfile health "healthcheck loop"
    stop_pidfile podman "podman system service"
}

# Only podman's settings and the base image, no service: for a test that
# runs podman itself (tests/systemd/run.sh: systemd as PID 1 needs
# `podman run --systemd=always`, which the Docker API does not offer).
base() {
    # Its container is on podman's default network: netavark again.
    need podman runc /usr/lib/podman/netavark iptables debootstrap
    write_conf
    base_image
    echo "CONTAINERS_CONF=$CONTAINERS_CONF; export CONTAINERS_CONF"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
base) base ;;
*) echo "usage: $0 start|stop|base" >&2; exit 2 ;;
esac
