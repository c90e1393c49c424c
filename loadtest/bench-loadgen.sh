#!/usr/bin/env bash
# wrk and `loadtest run` against the same nginx (one worker, pinned to CPU 0), each generator
# pinned to CPU 1, 64 keep-alive connections, one thread: requests per second and the
# generator's CPU seconds per million requests, side by side. Rounds alternate the two tools so
# that other load on the machine hits both alike. Meant for `make bench-loadgen`.
#
# Environment: LOADTEST (binary, default target/release/loadtest), NGINX (/usr/sbin/nginx),
# PORT (18080), ROUNDS (3), DURATION (5s), CONNECTIONS (64), ENGINES (uring epoll: each round
# runs wrk, then `loadtest run --engine E` for each). The ratio is loadtest's CPU per request
# over wrk's in the same round; "kernel" is loadtest's system CPU alone over wrk's whole CPU,
# the ratio it would have if its own code cost nothing. The last line has the median of each
# column.
set -euo pipefail
# shellcheck source=../scripts/bench-common.sh
. "$(dirname "$0")/../scripts/bench-common.sh"

LOADTEST=${LOADTEST:-target/release/loadtest}
NGINX=${NGINX:-/usr/sbin/nginx}
PORT=${PORT:-18080}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
ENGINES=${ENGINES:-uring epoll}
URL="http://127.0.0.1:$PORT/"

for tool in "$LOADTEST" "$NGINX" wrk taskset /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
bench_nginx_conf "$dir" "127.0.0.1:$PORT"
taskset -c 0 "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
trap 'kill -TERM $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
    curl -sf -o /dev/null "$URL" && break
    sleep 0.1
done
curl -sf -o /dev/null "$URL" || { echo "nginx did not start:" >&2; cat "$dir/error.log" >&2; exit 1; }

# Writes "requests/s CPU-s-per-million system-CPU-s-per-million" to $dir/figures for one run of
# "$@", whose output has wrk's lines. Runs in the script's shell, so that a failed run ends the
# script with its reason.
measure() {
    /usr/bin/time -f "%U %S" -o "$dir/time" taskset -c 1 "$@" >"$dir/out" 2>"$dir/err" || {
        echo "bench-loadgen: $1 failed:" >&2
        cat "$dir/err" >&2
        exit 1
    }
    awk -v time="$(cat "$dir/time")" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END {
            split(time, t, " ")
            printf "%12.0f %14.2f %14.2f\n", rps, (t[1] + t[2]) * 1e6 / n, t[2] * 1e6 / n
        }
    ' "$dir/out" >"$dir/figures"
}

echo "nginx: 1 worker on CPU 0; generators on CPU 1; -c$CONNECTIONS -t1 -d$DURATION, keep-alive"
header=$(printf "%6s %12s %14s" round "wrk req/s" "wrk CPU-s/M")
for engine in $ENGINES; do
    header+=$(printf " %12s %14s %7s %7s" "$engine req/s" "$engine CPU-s/M" ratio kernel)
done
echo "$header"
for round in $(seq "$ROUNDS"); do
    measure wrk -c"$CONNECTIONS" -t1 -d"$DURATION" "$URL"
    read -r wrk_rps wrk_cpu _ <"$dir/figures"
    line=$(printf "%6s %12s %14s" "$round" "$wrk_rps" "$wrk_cpu")
    for engine in $ENGINES; do
        measure "$LOADTEST" run --engine "$engine" -c"$CONNECTIONS" -t1 -d"$DURATION" "$URL"
        read -r rps cpu sys <"$dir/figures"
        line+=$(printf " %12s %14s %7.2f %7.2f" "$rps" "$cpu" \
            "$(awk -v a="$cpu" -v b="$wrk_cpu" 'BEGIN { print a / b }')" \
            "$(awk -v a="$sys" -v b="$wrk_cpu" 'BEGIN { print a / b }')")
    done
    echo "$line" | tee -a "$dir/rows"
done
line=$(printf "%6s" median)
for col in $(seq 2 "$(awk '{ print NF; exit }' "$dir/rows")"); do
    case $(( col < 4 ? col : 4 + (col - 4) % 4 )) in
        2 | 4) format=" %12.0f" ;;
        3 | 5) format=" %14.2f" ;;
        *) format=" %7.2f" ;;
    esac
    line+=$(printf "$format" "$(awk -v c="$col" '{ print $c }' "$dir/rows" | bench_median)")
done
echo "$line"
