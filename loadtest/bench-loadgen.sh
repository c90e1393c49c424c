#!/usr/bin/env bash
# wrk and `loadtest run` against the same nginx (one worker, pinned to CPU 0), each generator
# pinned to CPU 1, 64 keep-alive connections, one thread: requests per second and the
# generator's CPU seconds per million requests, side by side. Rounds alternate the two tools so
# that other load on the machine hits both alike. Meant for `make bench-loadgen`.
#
# Environment: LOADTEST (binary, default target/release/loadtest), NGINX (/usr/sbin/nginx),
# PORT (18080), ROUNDS (3), DURATION (5s), CONNECTIONS (64).
set -euo pipefail

LOADTEST=${LOADTEST:-target/release/loadtest}
NGINX=${NGINX:-/usr/sbin/nginx}
PORT=${PORT:-18080}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
URL="http://127.0.0.1:$PORT/"

for tool in "$LOADTEST" "$NGINX" wrk taskset /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool not found" >&2; exit 1; }
done

dir=$(mktemp -d)
cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "Hello, World!"; }
    }
}
EOF
taskset -c 0 "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
trap 'kill -TERM $nginx_pid 2>/dev/null; wait $nginx_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
    curl -sf -o /dev/null "$URL" && break
    sleep 0.1
done
curl -sf -o /dev/null "$URL" || { echo "nginx did not start:" >&2; cat "$dir/error.log" >&2; exit 1; }

# Prints "requests/s CPU-s-per-million" for one run of "$@", whose output has wrk's lines.
measure() {
    /usr/bin/time -f "%U %S" -o "$dir/time" taskset -c 1 "$@" >"$dir/out" 2>"$dir/err"
    awk -v time="$(cat "$dir/time")" '
        /requests in/ { n = $1 }
        /Requests\/sec/ { rps = $2 }
        END { split(time, t, " "); printf "%12.0f %14.2f", rps, (t[1] + t[2]) * 1e6 / n }
    ' "$dir/out"
}

echo "nginx: 1 worker on CPU 0; generators on CPU 1; -c$CONNECTIONS -t1 -d$DURATION, keep-alive"
printf "%5s %12s %14s %12s %14s\n" round "wrk req/s" "wrk CPU-s/M" "lt req/s" "lt CPU-s/M"
for round in $(seq "$ROUNDS"); do
    wrk_figures=$(measure wrk -c"$CONNECTIONS" -t1 -d"$DURATION" "$URL")
    lt_figures=$(measure "$LOADTEST" run -c"$CONNECTIONS" -t1 -d"$DURATION" "$URL")
    printf "%5s %s %s\n" "$round" "$wrk_figures" "$lt_figures"
done
