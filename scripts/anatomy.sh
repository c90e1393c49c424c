#!/usr/bin/env bash
# Kernel trips per request: each target in turn is pinned to CPU 0 and loaded with
# `wrk -t1 -c$CONNS` on `/` from CPU 1, while `perf stat` counts the server's syscalls, context
# switches and CPU time (children and threads included). One line per target: req/s, the ratio to
# nginx (one worker, measured first in the same run), syscalls, context switches and CPU µs per
# request. Not a test: a measurement, for the README's Performance section.
#
#   scripts/anatomy.sh [TARGET...]    a TARGET is `nginx` or a zoo model with its flags, quoted:
#   scripts/anatomy.sh nginx epoll 'uring --threads 1' 'tokio --threads 1'
#
# DETAIL=1 also counts the usual syscalls one by one (perf's syscall tracepoints, which cost far
# less than strace and so do not change the batching they count) and prints those made at least
# once per hundred requests. STRACE=1 prints `strace -f -c` for each zoo target, from a second
# run (strace slows the server, so its counts are only a list of names).
# Needs a release build (`cargo build --release -p servers`), wrk, perf, nginx.
set -euo pipefail

ZOO=${ZOO:-target/release/zoo}
PORT=${PORT:-18391}
CONNS=${CONNS:-64}
SECS=${SECS:-5}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

start() {
    if [ "$1" = nginx ]; then
        mkdir -p "$work/ngx"
        cat >"$work/ngx/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; pid $work/ngx/nginx.pid; error_log stderr warn;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 1000000000; keepalive_timeout 120s;
  client_body_temp_path $work/ngx/b; proxy_temp_path $work/ngx/p; fastcgi_temp_path $work/ngx/f;
  uwsgi_temp_path $work/ngx/u; scgi_temp_path $work/ngx/s;
  server { listen 127.0.0.1:$PORT; location / { default_type text/plain; return 200 "Hello, World!"; } } }
CONF
        taskset -c 0 "$NGINX" -p "$work/ngx" -c "$work/ngx/nginx.conf" 2>"$work/err" &
    else
        # shellcheck disable=SC2086 # the model's flags are meant to split
        taskset -c 0 "$ZOO" --model=$1 --listen "127.0.0.1:$PORT" >/dev/null 2>"$work/err" &
    fi
    server=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
        sleep 0.05
    done
    echo "$1 did not start: $(cat "$work/err")" >&2
    exit 1
}

stop() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
}

measure() {
    local name=$1
    start "$1"
    # perf attaches before wrk connects, so threads and children made for its connections count.
    # nginx's worker and prefork's workers are children forked at start: counted by pid.
    local pids
    pids=$(pgrep -d, -P "$server" || true)
    local events=raw_syscalls:sys_enter,context-switches,task-clock
    if [ "${DETAIL:-0}" = 1 ]; then
        for call in read write recvfrom sendto writev epoll_wait epoll_pwait epoll_ctl poll ppoll \
            futex rt_sigtimedwait io_uring_enter timerfd_settime ioctl accept4 fcntl sched_yield; do
            events="$events,syscalls:sys_enter_$call"
        done
    fi
    perf stat -x, -e "$events" -p "$server${pids:+,$pids}" \
        -o "$work/perf" -- sleep $((SECS + 2)) &
    local perf=$!
    sleep 0.5
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/" >"$work/wrk"
    wait "$perf"
    if [ "${STRACE:-0}" = 1 ] && [ "$name" != nginx ]; then
        strace -f -c -p "$server" -o "$work/strace" &
        local st=$!
        sleep 0.5
        taskset -c 1 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$PORT/" >/dev/null
        kill -INT "$st"; wait "$st" 2>/dev/null || true
        head -12 "$work/strace"
    fi
    stop
    local reqs rps sys cs clock
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk")
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
    sys=$(awk -F, '/raw_syscalls/ {print $1}' "$work/perf")
    cs=$(awk -F, '/context-switches/ {print $1}' "$work/perf")
    clock=$(awk -F, '/task-clock/ {print $1}' "$work/perf")
    [ "$name" = nginx ] && base=$rps
    if [ "${DETAIL:-0}" = 1 ]; then
        awk -F, -v r="$reqs" '/sys_enter_/ && $1 / r >= 0.01 {
            sub(/.*sys_enter_/, "", $3); line = line sprintf(" %s %.2f", $3, $1 / r) }
            END { print "   per request:" line }' "$work/perf" >&2
    fi
    awk -v n="$name" -v r="$reqs" -v rps="$rps" -v b="${base:-0}" -v s="$sys" -v c="$cs" -v t="$clock" \
        'BEGIN { printf "| %s | %.0f | %s | %.2f | %.2f | %.1f |\n", n, rps,
                 (b > 0 ? sprintf("%.2fx", rps / b) : "-"), s / r, c / r, t * 1000 / r }'
}

[ $# -gt 0 ] || set -- nginx epoll
echo "| server | req/s | x nginx | syscalls/req | context switches/req | CPU us/req |"
echo "|---|---:|---:|---:|---:|---:|"
for target in "$@"; do
    measure "$target"
done
