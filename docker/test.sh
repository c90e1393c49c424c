#!/usr/bin/env bash
# make docker-test: the compose flow end to end, on three models, torn down whatever happens.
#
#  1. builds the image the local way (docker/build.sh local: cargo on the host, debootstrap base);
#  2. checks that docker/docker-compose.yml matches the image's `zoo --list-models`;
#  3. writes a compose file for three models (thread, pool and one more; ZOO_TEST_MODELS to choose)
#     with docker/gen-compose.sh, checks `compose config`, brings the models up, waits until healthy;
#  4. from a container on the private network: /healthz, / and /info (the right model) of each,
#     and checks that every model got the same CPU, cpuset and memory limits;
#  5. runs the loadtest service (`loadtest compare --quick`, scenarios ZOO_TEST_SCENARIOS, default
#     plaintext) and checks that results.json holds figures for all three models;
#  6. takes everything down (containers, network, volumes) on any exit, and checks nothing is left.
#
# No Docker engine: prints "skipped: no Docker engine" and exits 0. A loadtest without
# `compare --target` (issue 7) is a failure, not a skip. ZOO_SKIP_BUILD=1 reuses the image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! engine_answers; then
    echo "docker-test: skipped: no Docker engine answers (docker version failed)"
    exit 0
fi

project=zoo-test
work="$(mktemp -d)"
file="$work/docker-compose.yml"
failures=()
fail() { failures+=("$*"); echo "docker-test: FAIL: $*" >&2; }
step() { echo "docker-test: == $*"; }
dc() { compose -p "$project" -f "$file" --project-directory "$ZOO_DOCKER_DIR" "$@"; }

teardown() {
    local rc=$?
    step "teardown"
    if [ -f "$file" ]; then dc --profile compare down -v --remove-orphans -t 10 >/dev/null 2>&1 || true; fi
    if ! remove_project "$project"; then
        echo "docker-test: FAIL: left behind:" >&2
        project_left "$project" >&2
        rc=1
    else
        echo "docker-test: nothing left (containers, networks, volumes of $project)"
    fi
    rm -rf "$work"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# A previous run killed hard may have left its containers.
remove_project "$project" || die "cannot remove what an earlier run left in $project"

step "build (local path)"
if [ "${ZOO_SKIP_BUILD:-0}" = 1 ] && docker image inspect "$ZOO_IMAGE" >/dev/null 2>&1; then
    log "ZOO_SKIP_BUILD=1: using $ZOO_IMAGE as it is"
else
    ZOO_GEN_COMPOSE=0 "$ZOO_DOCKER_DIR/build.sh" local
fi
mapfile -t listed < <(image_models)
log "the image lists: ${listed[*]}"
"$ZOO_DOCKER_DIR/gen-compose.sh" --check \
    || fail "docker/docker-compose.yml is stale: run docker/gen-compose.sh (or make docker-build) and commit it"

# Three models: thread, pool and one more (an event loop if there is one).
if [ -n "${ZOO_TEST_MODELS:-}" ]; then
    read -r -a models <<<"$ZOO_TEST_MODELS"
else
    models=()
    for m in thread pool; do
        printf '%s\n' "${listed[@]}" | grep -qx "$m" && models+=("$m")
    done
    for m in epoll tokio poll coroutine "${listed[@]}"; do
        [ "${#models[@]}" -ge 3 ] && break
        printf '%s\n' "${listed[@]}" | grep -qx "$m" || continue
        printf '%s\n' "${models[@]}" | grep -qx "$m" || models+=("$m")
    done
fi
[ "${#models[@]}" -ge 3 ] \
    || fail "the test needs three models, the image lists ${#listed[@]}: ${listed[*]} (testing those)"
[ "${#models[@]}" -ge 1 ] || die "no model to test"

step "compose file for ${models[*]}"
"$ZOO_DOCKER_DIR/gen-compose.sh" -o "$file" "${models[@]}"
export ZOO_RESULTS="$work/results" ZOO_OUT=run ZOO_UID="$(id -u)" ZOO_GID="$(id -g)"
export ZOO_COMPARE_ARGS="--quick" ZOO_SCENARIOS="${ZOO_TEST_SCENARIOS:-plaintext}"
export ZOO_HEALTH_INTERVAL=1s
mkdir -p "$ZOO_RESULTS/$ZOO_OUT"
dc --profile compare config -q || fail "compose config is not clean"
compose -f "$ZOO_DOCKER_DIR/docker-compose.yml" --profile compare config -q \
    || fail "docker/docker-compose.yml: compose config is not clean"

step "up: ${models[*]}"
dc up -d "${models[@]}"
if ! wait_healthy "$project" "${models[@]}"; then
    fail "not every model became healthy"
    exit 1
fi
for m in "${models[@]}"; do
    id="$(dc ps -q "$m")"
    echo "  $m: $(docker inspect -f '{{.State.Health.Status}}, cpus {{.HostConfig.NanoCpus}} ns/s, cpuset {{.HostConfig.CpusetCpus}}, memory {{.HostConfig.Memory}}, swap+memory {{.HostConfig.MemorySwap}}, user {{.Config.User}}' "$id")"
done
limits="$(for m in "${models[@]}"; do
    docker inspect -f '{{.HostConfig.NanoCpus}} {{.HostConfig.CpusetCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}} {{end}}' "$(dc ps -q "$m")"
done | sort -u)"
[ "$(wc -l <<<"$limits")" = 1 ] || fail "the models do not have the same limits: $limits"
grep -q '^[1-9]' <<<"$limits" || fail "no CPU limit set: $limits"

idle_report "$project" "${models[@]}"

step "requests from a container on the private network"
# The loadtest service's container (same image, same network, has curl), without its dependencies.
script='
rc=0
for m in "$@"; do
    health=$(curl -fsS --max-time 5 "http://$m:8080/healthz") || { echo "$m /healthz: failed"; rc=1; continue; }
    root=$(curl -fsS --max-time 5 "http://$m:8080/") || { echo "$m /: failed"; rc=1; continue; }
    info=$(curl -fsS --max-time 5 "http://$m:8080/info") || { echo "$m /info: failed"; rc=1; continue; }
    echo "  $m: /healthz -> $health | / -> $root | /info -> $info"
    case "$info" in *"\"model\":\"$m\""*) ;; *) echo "$m: /info names another model"; rc=1 ;; esac
    [ "$root" = "Hello, World!" ] || { echo "$m: / answered something else"; rc=1; }
done
exit $rc'
dc --profile compare run --rm -T --no-deps --entrypoint sh loadtest -c "$script" sh "${models[@]}" \
    || fail "a model did not answer as expected"

step "loadtest compare"
if ! has_compare; then
    fail "the image's loadtest has no 'compare --target' (issue 7): the comparison cannot run yet"
else
    if timeout "${ZOO_TEST_COMPARE_TIMEOUT:-900}" "${COMPOSE_CMD[@]}" -p "$project" -f "$file" \
        --project-directory "$ZOO_DOCKER_DIR" --profile compare run --rm -T loadtest; then
        out="$ZOO_RESULTS/$ZOO_OUT"
        ls -l "$out"
        if [ ! -s "$out/results.json" ]; then
            fail "no results.json in the report folder"
        else
            command -v python3 >/dev/null 2>&1 || die "python3 is needed to read results.json"
            python3 "$ZOO_DOCKER_DIR/check-results.py" "$out/results.json" "${models[@]}" \
                || fail "results.json lacks figures for some model"
        fi
        [ -s "$out/report.md" ] || fail "no report.md in the report folder"
    else
        fail "loadtest compare failed (or ran over ${ZOO_TEST_COMPARE_TIMEOUT:-900} s)"
    fi
fi

if [ "${#failures[@]}" -gt 0 ]; then
    echo "docker-test: ${#failures[@]} failure(s):" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "docker-test: passed (${models[*]})"
