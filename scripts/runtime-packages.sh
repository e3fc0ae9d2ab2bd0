#!/bin/sh
# The Debian packages an image needs to run jobq's binaries (libc6 left
# out: every Debian image has it), one per line: those of the shared
# libraries the binaries link (ldd), and of those the consumer opens with
# dlopen when a job needs them (libcrypto, libcurl, and libssl for
# rediss://: the "lib*.so.N" names in consumer/*/*.c and common/*.c, see
# common/dynlib.h), with what those link.
# Used by docker/Dockerfile and tests/systemd/run.sh. Run from the
# repository's root: sh scripts/runtime-packages.sh bin/jobq-consumer bin/jobq
# tzdata is no library but a file set: schedules read its zone files
# (common/tz.c), so it is always listed.
set -e
echo tzdata
sonames=$(grep -ho '"lib[A-Za-z0-9_+-]*\.so\.[0-9]*"' consumer/*/*.c common/*.c | tr -d '"' | sort -u)
opened=$(for so in $sonames; do ldconfig -p | awk -v so="$so" '$1 == so && $NF ~ /^\// {print $NF; exit}'; done)
for f in $( (for b in "$@"; do ldd "$b"; done; for o in $opened; do echo "x => $o"; ldd "$o"; done) |
            awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
    dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")"
done | cut -d: -f1 | sort -u | grep -vx libc6
