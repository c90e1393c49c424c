#!/usr/bin/env bash
# make swarm-compare / make swarm-test: the models and N loadtest replicas as a Docker Swarm stack
# (docker/gen-stack.sh), the replicas' HdrHistogram logs collected from every node with
# `docker service logs` and added up exactly with `loadtest merge`, one results.json and report.md
# (docker/swarm-report.py) in results/swarm-<UTC time>/.
#
#   docker/swarm.sh            on the swarm this engine belongs to (a manager node), on the nodes
#                              labelled zoo.server=true and zoo.generator=true
#   docker/swarm.sh --test     make swarm-test: joins a one-node swarm on loopback if the engine is
#                              in none, labels this node both ways, runs two models with three
#                              replicas, checks that each merged count is the sum of the replicas'
#                              and what the server's /metrics counted, removes the stack, the labels
#                              it added, and leaves the swarm only if it joined it
#
# No Docker engine under --test: prints a "skipped" line and exits 0. Variables: ZOO_IMAGE,
# ZOO_SKIP_BUILD=1 (use the image as it is), ZOO_SWARM_MODELS ("thread epoll"; default every
# model, or two under --test), ZOO_REPLICAS (3), ZOO_PATH, ZOO_CONNECTIONS, ZOO_CELL_SECONDS,
# ZOO_WARMUP_SECONDS, ZOO_GAP_SECONDS, ZOO_SWARM_LEAD (seconds from deploy to the first cell, 30),
# ZOO_SWARM_STACK (zoo-swarm), ZOO_LOGS_TIMEOUT (seconds one try at the replicas' logs may take,
# 20), ZOO_OUT, ZOO_RESULTS, and the limits of docker/gen-stack.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

test_mode=0
[ "${1:-}" = --test ] && test_mode=1
name="swarm-compare"; [ "$test_mode" = 1 ] && name="swarm-test"
step() { echo "$name: == $*"; }

if ! engine_answers; then
    if [ "$test_mode" = 1 ]; then
        echo "swarm-test: skipped: no Docker engine answers (docker version failed)"
        exit 0
    fi
    die "no Docker engine answers (docker version failed)"
fi

stack="${ZOO_SWARM_STACK:-zoo-swarm}"
work="$(mktemp -d)"
joined=0
labelled=()
deployed=0

stack_left() {
    { docker stack services -q "$stack" 2>/dev/null
      docker network ls -q --filter "label=com.docker.stack.namespace=$stack"
      docker config ls -q --filter "label=com.docker.stack.namespace=$stack"; } 2>/dev/null | grep -q .
}

teardown() {
    local rc=$?
    step "teardown"
    if [ "$deployed" = 1 ]; then
        docker stack rm "$stack" >/dev/null 2>&1 || true
        # Tasks, then networks and configs go after the services, asynchronously.
        for _ in $(seq 1 60); do stack_left || break; sleep 1; done
        if stack_left; then
            echo "$name: FAIL: stack $stack left behind" >&2; rc=1
        else
            echo "$name: stack $stack removed (services, network, config)"
        fi
    fi
    local node
    node="$(docker info --format '{{.Swarm.NodeID}}' 2>/dev/null || true)"
    for l in "${labelled[@]}"; do
        docker node update --label-rm "$l" "$node" >/dev/null 2>&1 || true
    done
    [ "${#labelled[@]}" -gt 0 ] && echo "$name: removed the labels it added: ${labelled[*]}"
    if [ "$joined" = 1 ]; then
        docker swarm leave --force >/dev/null && echo "$name: left the one-node swarm it created"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

step "swarm"
state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
case "$state" in
active) log "this engine is in a swarm already: it will be used and left as it is" ;;
inactive)
    [ "$test_mode" = 1 ] || die "this engine is in no swarm: 'docker swarm init' or 'docker swarm join' first (docker/README.md)"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    joined=1
    log "made a one-node swarm on 127.0.0.1 (it leaves it at the end)"
    ;;
*) die "the engine's swarm state is '$state': neither in a swarm nor out of one" ;;
esac
[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] \
    || die "this node is not a swarm manager: run this on a manager"
node="$(docker info --format '{{.Swarm.NodeID}}')"
if [ "$test_mode" = 1 ]; then
    for l in zoo.server zoo.generator; do
        if [ "$(docker node inspect -f "{{index .Spec.Labels \"$l\"}}" "$node")" != true ]; then
            docker node update --label-add "$l=true" "$node" >/dev/null
            labelled+=("$l")
        fi
    done
fi
for l in zoo.server zoo.generator; do
    n="$(docker node ls -q | xargs docker node inspect -f "{{index .Spec.Labels \"$l\"}}" | grep -c '^true$' || true)"
    [ "$n" -gt 0 ] || die "no node is labelled $l=true: docker node update --label-add $l=true NODE"
    log "nodes labelled $l=true: $n"
done

step "image $ZOO_IMAGE"
if [ "${ZOO_SKIP_BUILD:-0}" = 1 ] && docker image inspect "$ZOO_IMAGE" >/dev/null 2>&1; then
    log "ZOO_SKIP_BUILD=1: using $ZOO_IMAGE as it is"
else
    ZOO_GEN_COMPOSE=0 "$ZOO_DOCKER_DIR/build.sh" "${DOCKER_PATH:-local}"
fi
mapfile -t listed < <(image_models)
if [ -n "${ZOO_SWARM_MODELS:-}" ]; then
    read -r -a models <<<"$ZOO_SWARM_MODELS"
elif [ "$test_mode" = 1 ]; then
    models=(thread epoll)
else
    models=("${listed[@]}")
fi
if [ "$test_mode" = 1 ]; then
    "$ZOO_DOCKER_DIR/gen-stack.sh" --check \
        || die "docker/swarm-stack.yml is stale: run docker/gen-stack.sh and commit it"
    export ZOO_REPLICAS="${ZOO_REPLICAS:-3}" ZOO_CELL_SECONDS="${ZOO_CELL_SECONDS:-3}"
    export ZOO_CONNECTIONS="${ZOO_CONNECTIONS:-8}" ZOO_GAP_SECONDS="${ZOO_GAP_SECONDS:-5}"
    export ZOO_SWARM_LEAD="${ZOO_SWARM_LEAD:-20}" ZOO_CLIENT_CPUS="${ZOO_CLIENT_CPUS:-0.5}"
    export ZOO_CPUS="${ZOO_CPUS:-0.5}"
fi

# The stack's defaults, exported so that the report states them.
export ZOO_REPLICAS="${ZOO_REPLICAS:-3}" ZOO_PATH="${ZOO_PATH:-/plaintext}"
export ZOO_CONNECTIONS="${ZOO_CONNECTIONS:-64}" ZOO_CELL_SECONDS="${ZOO_CELL_SECONDS:-10}"
export ZOO_WARMUP_SECONDS="${ZOO_WARMUP_SECONDS:-0}" ZOO_GAP_SECONDS="${ZOO_GAP_SECONDS:-6}"
export ZOO_CPUS="${ZOO_CPUS:-1.0}" ZOO_CLIENT_CPUS="${ZOO_CLIENT_CPUS:-1.0}"

step "stack for ${models[*]}, $ZOO_REPLICAS generator replicas"
"$ZOO_DOCKER_DIR/gen-stack.sh" -o "$work/stack.yml" "${models[@]}"
cp "$ZOO_DOCKER_DIR/swarm-gen.sh" "$work/swarm-gen.sh"
lead="${ZOO_SWARM_LEAD:-30}"
cell=$(( ZOO_WARMUP_SECONDS + ZOO_CELL_SECONDS + ZOO_GAP_SECONDS ))
export ZOO_START_AT=$(( $(date +%s) + lead ))
out="${ZOO_RESULTS:-$ZOO_ROOT/results}/${ZOO_OUT:-swarm-$(date -u +%Y%m%dT%H%M%SZ)}"
[ "$test_mode" = 1 ] && [ -z "${ZOO_OUT:-}" ] && out="$work/results"
mkdir -p "$out"
log "first cell at $(date -u -d "@$ZOO_START_AT" +%H:%M:%SZ), ${#models[@]} cells of ${cell}s"
deployed=1
# One-node and registry-less swarms have no digest to pin: stack deploy says so and goes on.
if ! docker stack deploy --resolve-image never -c "$work/stack.yml" "$stack" >"$work/deploy.log" 2>&1; then
    cat "$work/deploy.log" >&2
    die "docker stack deploy failed"
fi
grep -v -e '^Creating' "$work/deploy.log" || true

step "waiting for the replicas to finish"
deadline=$(( ZOO_START_AT + ${#models[@]} * cell + 120 ))
while :; do
    states="$(docker service ps --format '{{.CurrentState}}' "${stack}_gen" 2>/dev/null || true)"
    done_n="$(grep -c '^Complete' <<<"$states" || true)"
    bad="$(grep -E '^(Failed|Rejected|Orphaned)' <<<"$states" || true)"
    if [ -n "$bad" ]; then
        docker service ps --no-trunc "${stack}_gen" >&2
        echo "--- the replicas' last log lines:" >&2
        docker service logs --raw --tail 10 "${stack}_gen" >&2 2>&1 || true
        die "a generator replica failed"
    fi
    [ "$done_n" -ge "$ZOO_REPLICAS" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { docker service ps --no-trunc "$stack"_gen >&2; die "the replicas did not finish in time"; }
    sleep 2
done
log "all $ZOO_REPLICAS replicas complete"

step "collecting their logs (docker service logs) and merging (loadtest merge)"
# `docker service logs` sometimes stops partway and never returns (an engine bug, docker/cli#4678;
# here 5 first tries in 12, right after the replicas completed, and no second try so far):
# each try is bounded, and the logs count as collected once every replica's last line
# ("zoo-swarm done - SLOT rc=N") is in them.
logs_complete() {
    [ "$(awk '$1 == "zoo-swarm" && $2 == "done" { seen[$4] = 1 } END { print length(seen) }' \
        "$work/gen.log")" -ge "$ZOO_REPLICAS" ]
}
logs_timeout=${ZOO_LOGS_TIMEOUT:-20}
logs_tries=8
for try in $(seq "$logs_tries"); do
    rc=0
    timeout "$logs_timeout" docker service logs --raw "${stack}_gen" >"$work/gen.log" 2>&1 || rc=$?
    logs_complete && break
    if [ "$rc" = 124 ]; then
        log "docker service logs did not return within $logs_timeout s (try $try)"
    else
        log "docker service logs ended (rc=$rc) without every replica's last line (try $try)"
    fi
    [ "$try" = "$logs_tries" ] && {
        cat "$work/gen.log" >&2
        die "the replicas' logs could not be collected"
    }
    sleep 2
done
grep '^zoo-swarm error' "$work/gen.log" >&2 && die "a replica reported an error"
mkdir -p "$out/logs"
awk -v dir="$out/logs" '
    $1 != "zoo-swarm" { next }
    $2 == "hlog" || $2 == "json" {
        line = $0; sub(/^zoo-swarm [a-z]+ [^ ]+ [^ ]+ /, "", line)
        system("mkdir -p \"" dir "/" $3 "\"")
        file = dir "/" $3 "/replica-" $4 "." ($2 == "hlog" ? "hlog" : "json")
        print line > file
    }
    $2 == "metrics" { print $3, $4, $5, $6 > (dir "/metrics.txt") }
' "$work/gen.log"
for m in "${models[@]}"; do
    logs=("$out/logs/$m"/replica-*.hlog)
    [ -e "${logs[0]}" ] || die "no interval log came back for $m"
    # The merge is loadtest's own, run in the image (network none): the files are mounted.
    docker run --rm --network none -u "$(id -u):$(id -g)" -v "$out/logs/$m:/logs" \
        --entrypoint /usr/local/bin/loadtest "$ZOO_IMAGE" \
        merge "${logs[@]/#$out\/logs\/$m\//\/logs\/}" --json /logs/merged.json >"$out/logs/$m/merge.txt"
done
command -v python3 >/dev/null 2>&1 || die "python3 is needed to write results.json"
check=(); [ "$test_mode" = 1 ] && check=(--check)
python3 "$ZOO_DOCKER_DIR/swarm-report.py" "${check[@]}" "$out" "${models[@]}"
if [ "$test_mode" = 1 ]; then
    echo "swarm-test: passed (${models[*]}, ${ZOO_REPLICAS} replicas)"
else
    log "report: $out/report.md"
fi
