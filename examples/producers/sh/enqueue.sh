#!/bin/sh
# A jobq producer in POSIX sh with redis-cli, written from docs/PROTOCOL.md
# alone: enqueue one job (its payload as JSON text, field `enc json`, so no
# msgpack is needed to send it), wait for it, print its result.
#
#     JOBQ_REDIS_URL=redis://127.0.0.1:6379 ./enqueue.sh sha256 '{"data":"hello","rounds":3}'
#
# The result comes back as msgpack bytes: a string result is printed as a
# JSON string, nil as "null", anything else as "msgpack:" and its bytes in
# hex (decoding msgpack is no job for sh). A chunked result (larger than the
# consumer's --chunk-size) is reported, not fetched.
# Exit status: 0 done, 1 dead (the error on stderr), 2 bad usage, a payload
# that is not JSON, or no result within 30 s, 3 Redis trouble. Environment: JOBQ_REDIS_URL,
# JOBQ_PREFIX, JOBQ_QUEUE.
set -u

WAIT_SECONDS=30
url=${JOBQ_REDIS_URL:-redis://127.0.0.1:6379}
prefix=${JOBQ_PREFIX:-jobq}
queue=${JOBQ_QUEUE:-default}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 TYPE [PAYLOAD_JSON]" >&2
    exit 2
fi

rcli() {
    redis-cli -u "$url" --no-auth-warning "$@"
}

# Every key of a queue carries the hash tag {queue} (PROTOCOL, notation).
k="$prefix:{$queue}"

# XADD (§1): the entry id is the job id. No payload field means nil.
# `notify 1`: this script waits, so the consumer pushes the notify list
# (§3; since 1.2 only for jobs that ask). redis-cli prints a Redis error as text with status 0, so the id is
# checked for its shape.
rcli SADD "$prefix:queues" "$queue" >/dev/null || exit 3
if [ $# -eq 2 ]; then
    id=$(rcli XADD "$k:stream" '*' type "$1" notify 1 enc json payload "$2") || exit 3
else
    id=$(rcli XADD "$k:stream" '*' type "$1" notify 1) || exit 3
fi
case $id in
    [0-9]*-[0-9]*) ;;
    *) echo "enqueue.sh: XADD failed: $id" >&2; exit 3 ;;
esac

# BLPOP the notify list (§3): it gets `done` or `dead` once. redis-cli
# prints the key and the element on two lines, or nothing on timeout.
state=$(rcli BLPOP "$k:notify:$id" "$WAIT_SECONDS" | sed -n 2p) || exit 3
case $state in
    done) ;;
    dead)
        error=$(rcli HGET "$k:result:$id" error)
        # sh cannot parse JSON, so a payload that is not JSON is found by
        # the consumer, which dead-letters it at once (PROTOCOL §1): a bad
        # payload, 2, as in the other examples.
        case $error in
            "payload is not valid JSON"*)
                echo "enqueue.sh: payload is not JSON: ${error#payload is not valid JSON: }" >&2
                exit 2 ;;
        esac
        echo "enqueue.sh: job $id is dead: $error" >&2
        exit 1 ;;
    *)
        echo "enqueue.sh: job $id did not finish in $WAIT_SECONDS s" >&2
        exit 2 ;;
esac

if [ -n "$(rcli HGET "$k:result:$id" chunks)" ]; then
    echo "enqueue.sh: job $id has a chunked result ($k:result:$id:chunks), not fetched here" >&2
    exit 0
fi

# The result bytes, one decimal per byte. --raw writes the value and a
# newline, which the byte count below leaves out.
tmp=$(mktemp) || exit 3
trap 'rm -f "$tmp"' EXIT
rcli --raw HGET "$k:result:$id" result >"$tmp" || exit 3
size=$(($(wc -c <"$tmp") - 1))
if [ "$size" -le 0 ]; then
    echo null # no result field: nil
    exit 0
fi
# The first five bytes as $1 .. $5 (split on purpose).
# shellcheck disable=SC2046
set -- $(od -An -v -tu1 -N 5 "$tmp")
first=$1
# The msgpack string headers: fixstr (0xa0..0xbf), str 8 (0xd9), str 16
# (0xda), str 32 (0xdb).
if [ "$first" -ge 160 ] && [ "$first" -le 191 ]; then
    skip=1 len=$((first - 160))
elif [ "$first" -eq 217 ]; then
    skip=2 len=$2
elif [ "$first" -eq 218 ]; then
    skip=3 len=$(($2 * 256 + $3))
elif [ "$first" -eq 219 ]; then
    skip=5 len=$(((($2 * 256 + $3) * 256 + $4) * 256 + $5))
elif [ "$first" -eq 192 ]; then
    echo null
    exit 0
else
    printf 'msgpack:'
    od -An -v -tx1 -N "$size" "$tmp" | tr -d ' \n'
    echo
    exit 0
fi
# As JSON, like the other examples: quoted, with \ " tab and newline
# escaped (the bytes are UTF-8 and pass through as they are; the sed holds
# a literal tab).
printf '"'
dd if="$tmp" bs=1 skip="$skip" count="$len" 2>/dev/null |
    sed 's/\\/\\\\/g; s/"/\\"/g; s/	/\\t/g' |
    awk 'BEGIN { ORS = "" } NR > 1 { print "\\n" } { print }'
echo '"'
