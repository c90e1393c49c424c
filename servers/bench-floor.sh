#!/usr/bin/env bash
# The floor of a thread per connection: nginx (one worker), the least a blocking thread per
# connection can do (servers/examples/thread_floor.rs), `zoo --model=thread` and
# `zoo --model=epoll`, each alone on CPU 0, driven by `loadtest run` on CPU 1 with 64 keep-alive
# connections on one thread, as `make bench` drives them. Prints each round's requests per second,
# the server's CPU microseconds per request (utime + stime of its processes, from /proc) and the
# ratio to nginx's requests per second in that round, then the median of each. Rounds alternate
# the servers, so that other load on the machine hits them alike. Meant for `make bench-floor`.
#
# Environment: LOADTEST (target/release/loadtest), ZOO (target/release/zoo), FLOOR
# (target/release/examples/thread_floor), NGINX (/usr/sbin/nginx), PORT (18090), ROUNDS (3),
# DURATION (5s), WARMUP (1s), CONNECTIONS (64), SERVERS ("nginx floor thread epoll": nginx, floor,
# or zoo model names, nginx first).
set -euo pipefail
# shellcheck source=../scripts/bench-common.sh
. "$(dirname "$0")/../scripts/bench-common.sh"

LOADTEST=${LOADTEST:-target/release/loadtest}
ZOO=${ZOO:-target/release/zoo}
FLOOR=${FLOOR:-target/release/examples/thread_floor}
NGINX=${NGINX:-/usr/sbin/nginx}
PORT=${PORT:-18090}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-64}
ADDR=127.0.0.1:$PORT
URL="http://$ADDR/"

for tool in "$LOADTEST" "$ZOO" "$FLOOR" "$NGINX" taskset curl; do
    command -v "$tool" >/dev/null || { echo "bench-floor: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$dir"' EXIT
bench_nginx_conf "$dir" "$ADDR"

# Starts server "$1" on CPU 0 and waits for its first answer.
start_server() {
    case $1 in
        nginx) taskset -c 0 "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" & ;;
        floor) taskset -c 0 "$FLOOR" "$ADDR" >/dev/null & ;;
        *) taskset -c 0 "$ZOO" --model="$1" --listen "$ADDR" >/dev/null & ;;
    esac
    server_pid=$!
    for _ in $(seq 50); do
        curl -sf -o /dev/null "$URL" && return 0
        sleep 0.1
    done
    echo "bench-floor: $1 did not answer on $URL" >&2
    exit 1
}

# Clock ticks of user and system CPU of the server and its children (nginx's worker), from /proc.
server_ticks() {
    local total=0 pid
    for pid in "$server_pid" $(pgrep -P "$server_pid" || true); do
        total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}

# Prints "requests/s CPU-microseconds-per-request" for server "$1": a warm-up, then the measured run.
measure() {
    start_server "$1"
    taskset -c 1 "$LOADTEST" run -c"$CONNECTIONS" -t1 -d"$WARMUP" "$URL" >/dev/null 2>"$dir/err" || {
        echo "bench-floor: the warm-up against $1 failed:" >&2
        cat "$dir/err" >&2
        exit 1
    }
    local before after
    before=$(server_ticks)
    taskset -c 1 "$LOADTEST" run -c"$CONNECTIONS" -t1 -d"$DURATION" "$URL" >"$dir/out" 2>"$dir/err" || {
        echo "bench-floor: loadtest run against $1 failed:" >&2
        cat "$dir/err" >&2
        exit 1
    }
    after=$(server_ticks)
    stop_server
    awk -v ticks=$(( after - before )) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END { printf "%.0f %.2f\n", rps, ticks / hz * 1e6 / n }
    ' "$dir/out"
}

SERVERS=${SERVERS:-nginx floor thread epoll}
if [ "${SERVERS%% *}" != nginx ]; then
    echo "bench-floor: SERVERS must start with nginx (the ratios are to it): $SERVERS" >&2
    exit 1
fi
echo "each server alone on CPU 0; loadtest run on CPU 1: -c$CONNECTIONS -t1 -d$DURATION after" \
    "a $WARMUP warm-up, keep-alive; us/req is the server's CPU microseconds per request;" \
    "floor is servers/examples/thread_floor.rs"
header=$(printf "%6s" round)
for s in $SERVERS; do
    header+=$(printf " %12s %9s" "$s req/s" "us/req")
    [ "$s" = nginx ] || header+=$(printf " %7s" "×nginx")
done
echo "$header"
for round in $(seq "$ROUNDS"); do
    line=$(printf "%6s" "$round")
    nginx_rps=
    for s in $SERVERS; do
        # In this shell, not a subshell: a failure ends the script, and its trap stops the server.
        measure "$s" >"$dir/figures"
        read -r rps cpu <"$dir/figures"
        line+=$(printf " %12s %9s" "$rps" "$cpu")
        if [ "$s" = nginx ]; then
            nginx_rps=$rps
        else
            line+=$(printf " %7.2f" "$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { print a / b }')")
        fi
    done
    echo "$line" | tee -a "$dir/rows"
done
line=$(printf "%6s" median)
for col in $(seq 2 "$(awk '{ print NF; exit }' "$dir/rows")"); do
    # Columns: nginx req/s, us/req; then req/s, µs/req, ×nginx for each other server.
    case $(( col < 4 ? col - 2 : (col - 4) % 3 )) in
        0) format=" %12.0f" ;;
        1) format=" %9.2f" ;;
        *) format=" %7.2f" ;;
    esac
    line+=$(printf "$format" "$(awk -v c="$col" '{ print $c }' "$dir/rows" | bench_median)")
done
echo "$line"
