#!/bin/sh
# Runs each libFuzzer target for SECONDS: first every regression input
# (tests/fuzz/regress/<target>/, crashes found before: each must pass
# now), then fuzzing from the seed corpus (tests/fuzz/corpus/<target>/) in
# a scratch directory, so the repository's corpus only changes on purpose.
# Prints the executions per target; exits non-zero on the first finding,
# whose input libFuzzer leaves in build/fuzz/findings/.
set -e
secs=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/fuzz
mkdir -p "$out/findings"
for t in "$@"; do
    bin=$out/$t
    reg=$root/tests/fuzz/regress/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        ASAN_OPTIONS=allocator_may_return_null=1 "$bin" -malloc_limit_mb=1048576 -runs=1 "$reg"/* >"$out/$t.regress.log" 2>&1 ||
            { cat "$out/$t.regress.log"; echo "fuzz: $t fails a regression input"; exit 1; }
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # msgpack-c allocates a container's elements by the count it
    # announces, before it reads them: a 5-byte input may ask for 96 GiB,
    # which malloc refuses (msgpack-c then says NOMEM, as in production).
    # So a refused malloc is not a finding, and no single-malloc limit
    # applies; a real blow-up still trips the 2 GiB RSS limit.
    if ! ASAN_OPTIONS=allocator_may_return_null=1 "$bin" "$work" "$root/tests/fuzz/corpus/$t" -max_total_time="$secs" \
            -max_len=4096 -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1048576 -print_final_stats=1 \
            -artifact_prefix="$out/findings/$t-" >"$out/$t.log" 2>&1; then
        tail -n 60 "$out/$t.log"
        echo "fuzz: $t found a problem; input in $out/findings/"
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")
    echo "fuzz: $t: $execs executions in ${secs}s, no finding"
    rm -rf "$work"
    trap - EXIT
done
