#!/bin/sh
# Writes the proxy's nginx.conf for ZOO_UPSTREAM (host:port) and runs nginx in the foreground:
# the site `loadtest compare --behind nginx` starts (one worker, keep-alive to the upstream,
# HTTP/1.1 with the Connection header cleared, proxy buffering on), listening on ZOO_LISTEN_PORT.
set -eu
: "${ZOO_UPSTREAM:?ZOO_UPSTREAM must name the upstream, e.g. pool:8080}"
port="${ZOO_LISTEN_PORT:-8080}"
keepalive="${ZOO_UPSTREAM_KEEPALIVE:-64}"
cat >/tmp/nginx.conf <<CONF
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 120s;
    client_header_timeout 5s;
    server_tokens off;
    upstream target {
        server $ZOO_UPSTREAM;
        keepalive $keepalive;
        keepalive_requests 1000000000;
        keepalive_timeout 120s;
    }
    server {
        listen $port;
        client_max_body_size 64m;
        location / {
            proxy_pass http://target;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_read_timeout 60s;
        }
    }
}
CONF
exec nginx -c /tmp/nginx.conf
