#!/bin/sh
# One generator replica of the swarm stack (docker/gen-stack.sh), run inside the zoo image as a
# swarm config. Every replica loads the same targets in the same order, each cell starting at a
# wall-clock time fixed at deploy (ZOO_START_AT, seconds since the epoch), so the replicas of one
# cell load the server together, from whichever nodes they run on. It prints everything it measured
# on stdout, one tagged line at a time, for `docker service logs` to carry back from every node
# (docker/swarm.sh collects them):
#
#   zoo-swarm hlog NAME SLOT LINE      the cell's HdrHistogram interval log, line by line
#   zoo-swarm json NAME SLOT JSON      `loadtest run --json` of the cell, on one line
#   zoo-swarm metrics NAME before|after REQUESTS CPU   the server's zoo_requests_total and
#                                      process_cpu_seconds_total around the cell (slot 1 only)
#   zoo-swarm error NAME SLOT TEXT     what went wrong
#
# Environment (set by the stack file): ZOO_TARGETS ("name=url ..."), ZOO_START_AT, ZOO_SLOT
# ({{.Task.Slot}}), ZOO_PATH, ZOO_CONNECTIONS, ZOO_CELL_SECONDS, ZOO_WARMUP_SECONDS, ZOO_GAP_SECONDS.
set -u
slot="${ZOO_SLOT:-1}"
path="${ZOO_PATH:-/plaintext}"
conns="${ZOO_CONNECTIONS:-64}"
secs="${ZOO_CELL_SECONDS:-10}"
warm="${ZOO_WARMUP_SECONDS:-0}"
gap="${ZOO_GAP_SECONDS:-6}"
start="${ZOO_START_AT:?ZOO_START_AT (seconds since the epoch) is not set}"

# Sleeps until the absolute time $1 (seconds since the epoch, fractions allowed).
sleep_until() {
    d="$(awk -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { d = t - n; if (d < 0) d = 0; printf "%.3f", d }')"
    sleep "$d"
}

# zoo_requests_total and process_cpu_seconds_total ("-" where the server has none).
server_counts() {
    curl -fsS --max-time 5 "$1/metrics" | awk '
        $1 == "zoo_requests_total" { r = $2 }
        $1 == "process_cpu_seconds_total" { c = $2 }
        END { print (r == "" ? "-" : r), (c == "" ? "-" : c) }'
}

i=0
rc=0
for target in $ZOO_TARGETS; do
    name="${target%%=*}"
    url="${target#*=}"
    at="$(awk -v s="$start" -v i="$i" -v c="$((warm + secs + gap))" 'BEGIN { printf "%.3f", s + i * c }')"
    i=$((i + 1))
    # The model must answer before its cell starts: a model still starting is waited for.
    until curl -fsS --max-time 2 -o /dev/null "$url/healthz"; do
        if awk -v t="$at" -v n="$(date +%s)" 'BEGIN { exit !(n > t) }'; then
            echo "zoo-swarm error $name $slot $url/healthz did not answer before the cell's start"
            rc=1
            continue 2
        fi
        sleep 1
    done
    if [ "$slot" = 1 ]; then
        sleep_until "$(awk -v t="$at" 'BEGIN { printf "%.3f", t - 1.5 }')"
        echo "zoo-swarm metrics $name before $(server_counts "$url")"
    fi
    sleep_until "$at"
    if loadtest run "$url$path" -c "$conns" -d "${secs}s" --warmup "${warm}s" \
        --hlog /tmp/cell.hlog --json /tmp/cell.json >/tmp/cell.out 2>&1; then
        sed "s/^/zoo-swarm hlog $name $slot /" /tmp/cell.hlog
        echo "zoo-swarm json $name $slot $(tr -d '\n' </tmp/cell.json)"
    else
        echo "zoo-swarm error $name $slot loadtest run failed: $(tail -n 3 /tmp/cell.out | tr '\n' ' ')"
        rc=1
    fi
    if [ "$slot" = 1 ]; then
        # Every replica has stopped by then (a cell's last answers take at most loadtest's 2 s
        # timeout); the gap keeps the next cell's load out of this count.
        sleep_until "$(awk -v t="$at" -v c="$((warm + secs))" -v g="$gap" 'BEGIN { printf "%.3f", t + c + g / 2 }')"
        echo "zoo-swarm metrics $name after $(server_counts "$url")"
    fi
done
echo "zoo-swarm done - $slot rc=$rc"
exit "$rc"
