#!/bin/sh
# Installs the Debian 12 packages that building, running and testing jobq
# need, if any is missing. Needs root (or sudo) only when something is missing.
set -e
PKGS="build-essential pkg-config libhiredis-dev libuv1-dev libmsgpack-dev libjson-c-dev
libssl-dev libcriterion-dev redis-server redis-tools python3 python3-redis python3-msgpack
python3-pytest"
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
