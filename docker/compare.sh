#!/usr/bin/env bash
# make docker-compare: build the image, start every model in its own container under the same
# limits, run `loadtest compare` against them from the loadtest container, take everything down.
# The report lands in results/docker-<UTC time>/ (results.json, report.md, charts).
#
# Variables: DOCKER_PATH (local|registry, default local), ZOO_SKIP_BUILD=1 (use the image as it
# is), ZOO_TWINS=1 (the Python originals too, from docker/build-twins.sh), ZOO_SCENARIOS (all),
# ZOO_COMPARE_ARGS (e.g. --quick), ZOO_BEHIND=1 (also measure each model through its NAME-nginx
# proxy of the compose profile `behind`, as NAME+nginx), and the limits of
# docker/docker-compose.yml (ZOO_CPUS, ZOO_MEM, ZOO_SERVER_CPUSET, ZOO_CLIENT_CPUSET, ...).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

engine_answers || die "no Docker engine answers (docker version failed)"
if [ "${ZOO_SKIP_BUILD:-0}" != 1 ]; then
    "$ZOO_DOCKER_DIR/build.sh" "${DOCKER_PATH:-local}"
else
    "$ZOO_DOCKER_DIR/gen-compose.sh"
fi
has_compare || die "the image's loadtest has no 'compare --target' yet (issue 7): nothing to run"

project=zoo
file="$ZOO_DOCKER_DIR/docker-compose.yml"
mapfile -t models < <(image_models)
if [ "${ZOO_TWINS:-0}" = 1 ]; then
    # The Python originals join under the same limits (docker/README.md, "The Python originals").
    [ "${ZOO_SKIP_BUILD:-0}" = 1 ] || "$ZOO_DOCKER_DIR/build-twins.sh"
    mapfile -t -O "${#models[@]}" models < <(python3 -c 'import json, sys
for t in json.load(open(sys.argv[1]))["twins"]: print(t["name"])' "$ZOO_ROOT/peers/python/twins.json")
fi
export ZOO_OUT="${ZOO_OUT:-docker-$(date -u +%Y%m%dT%H%M%SZ)}"
export ZOO_RESULTS="${ZOO_RESULTS:-$ZOO_ROOT/results}"
export ZOO_UID="${ZOO_UID:-$(id -u)}" ZOO_GID="${ZOO_GID:-$(id -g)}"
mkdir -p "$ZOO_RESULTS/$ZOO_OUT"

down() {
    local rc=$?
    log "taking the containers down"
    compose -p "$project" -f "$file" --profile compare --profile behind down -v --remove-orphans -t 15 >/dev/null 2>&1 || true
    remove_project "$project" || { project_left "$project" >&2; rc=1; }
    exit "$rc"
}
trap down EXIT
trap 'exit 130' INT TERM

log "starting ${#models[@]} models: ${models[*]}"
compose -p "$project" -f "$file" up -d "${models[@]}"
wait_healthy "$project" "${models[@]}" || die "not every model became healthy"
if [ "${ZOO_BEHIND:-0}" = 1 ]; then
    log "building ${ZOO_PROXY_IMAGE:-zoo-nginx:latest} (nginx-light on ${ZOO_BASE_IMAGE:-zoo-base:bookworm})"
    docker build -q -f "$ZOO_DOCKER_DIR/Dockerfile.proxy" \
        --build-arg "BASE_IMAGE=${ZOO_BASE_IMAGE:-zoo-base:bookworm}" \
        -t "${ZOO_PROXY_IMAGE:-zoo-nginx:latest}" "$ZOO_DOCKER_DIR" >/dev/null
    proxies=("${models[@]/%/-nginx}")
    compose -p "$project" -f "$file" --profile behind up -d "${proxies[@]}"
    wait_healthy "$project" "${proxies[@]}" || die "not every proxy became healthy"
    for m in "${models[@]}"; do
        ZOO_COMPARE_ARGS="${ZOO_COMPARE_ARGS:-} --target $m+nginx=http://$m-nginx:8080"
    done
    export ZOO_COMPARE_ARGS
fi
idle_report "$project" "${models[@]}"
log "all healthy; comparing (scenarios ${ZOO_SCENARIOS:-all} ${ZOO_COMPARE_ARGS:-})"
tty=(-T); [ -t 0 ] && [ -t 1 ] && tty=()
compose -p "$project" -f "$file" --profile compare run --rm "${tty[@]}" loadtest
log "report: $ZOO_RESULTS/$ZOO_OUT/report.md"
