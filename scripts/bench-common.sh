# Shell functions the benchmark scripts share (loadtest/bench-loadgen.sh, servers/bench-floor.sh):
# sourced, not run.

# Writes DIR/nginx.conf: nginx in the foreground with one worker, no access log, keep-alive
# without a request limit, its temp files in DIR, answering "Hello, World!" on ADDR ("$1" DIR,
# "$2" ADDR, host:port). Start it with: nginx -p DIR -c DIR/nginx.conf -e DIR/error.log
bench_nginx_conf() {
    cat >"$1/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    server {
        listen $2;
        location / { return 200 "Hello, World!"; }
    }
}
CONF
}

# The median of the numbers on standard input, one per line (the middle one, or the mean of the
# two middle ones).
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
