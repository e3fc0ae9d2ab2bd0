#!/bin/sh
# Installs the Debian 12 packages jobq needs, if any is missing. Needs root
# (or sudo) only when something is missing.
#   scripts/deps.sh        what building and running need (make, make run,
#                          make install: go-md2man for the man pages)
#   scripts/deps.sh test   that plus what the whole test suite needs (make test)
#   scripts/deps.sh bench  that plus what make bench-compare / bench-seed need
#   scripts/deps.sh docs   that plus graphviz, for make graph (docs/include-graph.svg)
set -e
PKGS="build-essential pkg-config libhiredis-dev libuv1-dev libmsgpack-dev libjson-c-dev
libssl-dev libhttp-parser-dev libncurses-dev libcurl4-openssl-dev tzdata
redis-server redis-tools go-md2man"
# libssl-dev: OpenSSL's headers, and libssl3's libcrypto.so.3, which the
# consumer opens with dlopen at the first sha256 job (consumer/dl/cryptosym.h):
# not linked, but needed at run time all the same. libcurl4-openssl-dev
# likewise for libcurl.so.4 (--http-allow). tzdata: the zone files of
# `jobq schedule add --cron ... --tz ZONE`, read by the CLI and the workers
# (common/tz.c).
# The suite also drives foreign clients (python3-redis, redis-cli), a
# terminal (tmux), a browser (chromium), promtool, clang-format (make
# format-check), clang's libFuzzer, a
# container engine (podman) and the man/systemd checkers. netavark runs
# `iptables` to set up a container network, yet neither depends on nor
# recommends it: without it `make test-compose` failed on a fresh machine
# with "netavark: No such file or directory". python3-yaml parses
# deploy/k8s/ (tests/integration/test_k8s.py).
TEST_PKGS="clang-format libcriterion-dev python3 python3-redis python3-msgpack python3-pytest python3-yaml tmux
prometheus chromium chromium-driver python3-selenium clang libclang-rt-14-dev
podman runc netavark aardvark-dns iptables docker-compose debootstrap man-db systemd procps nodejs"
# The benchmarks run Node.js peers (BullMQ, bee-queue, worker_threads) and
# share the test harness's helpers (conftest.py imports pytest).
BENCH_PKGS="python3 python3-redis python3-msgpack python3-pytest nodejs"
[ "${1:-}" = test ] && PKGS="$PKGS $TEST_PKGS"
[ "${1:-}" = bench ] && PKGS="$PKGS $BENCH_PKGS"
# make graph draws the consumer's include graph with graphviz's dot.
[ "${1:-}" = docs ] && PKGS="$PKGS graphviz python3"
# npm (the Node.js example producer, the benchmarks' peers): Debian's
# package, unless an npm is there already (NodeSource's nodejs bundles its
# own, and conflicts with Debian's).
case "${1:-}" in test|bench) command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm" ;; esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
