# Shared by the docker/*.sh scripts (sourced, not run).

ZOO_DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZOO_ROOT="$(dirname "$ZOO_DOCKER_DIR")"
ZOO_IMAGE="${ZOO_IMAGE:-zoo:latest}"
export ZOO_IMAGE

log() { echo "${0##*/}: $*"; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

engine_answers() { docker version >/dev/null 2>&1; }

# `docker compose` (v2 plugin) when present, else the standalone `docker-compose` (v1).
if docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
else
    COMPOSE_CMD=()
fi
compose() {
    [ "${#COMPOSE_CMD[@]}" -gt 0 ] || die "neither 'docker compose' nor 'docker-compose' is installed"
    "${COMPOSE_CMD[@]}" "$@"
}

# The models the image knows, one a line (`zoo --list-models` inside it).
image_models() {
    docker run --rm --network none "$ZOO_IMAGE" --list-models
}

# Wait until every container of `project` named after `services` is healthy (the image's
# HEALTHCHECK, tightened in the compose file). Fails at once on an exited or unhealthy container,
# printing its last log lines; gives up after ZOO_HEALTH_TIMEOUT seconds (default 90).
wait_healthy() {
    local project="$1"; shift
    local deadline=$((SECONDS + ${ZOO_HEALTH_TIMEOUT:-90})) s id state health pending
    while :; do
        pending=()
        for s in "$@"; do
            id="$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
                --filter "label=com.docker.compose.service=$s" | head -n1)"
            if [ -z "$id" ]; then pending+=("$s(no container)"); continue; fi
            state="$(docker inspect -f '{{.State.Status}}' "$id")"
            health="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")"
            if [ "$state" = exited ] || [ "$state" = dead ] || [ "$health" = unhealthy ]; then
                echo "--- $s: $state, $health; last log lines:" >&2
                docker logs --tail 20 "$id" >&2 2>&1 || true
                return 1
            fi
            [ "$health" = healthy ] || pending+=("$s($health)")
        done
        [ "${#pending[@]}" -eq 0 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "not healthy after ${ZOO_HEALTH_TIMEOUT:-90} s: ${pending[*]}" >&2
            return 1
        fi
        sleep 1
    done
}

# Remove whatever a compose project left: containers, its networks and volumes (also those a
# compose file no longer describes). Quiet; true when nothing remains.
remove_project() {
    local project="$1" label="label=com.docker.compose.project=$1"
    local ids
    ids="$(docker ps -aq --filter "$label")"
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    ids="$(docker network ls -q --filter "$label")"
    [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
    ids="$(docker volume ls -q --filter "$label")"
    [ -n "$ids" ] && docker volume rm -f $ids >/dev/null 2>&1
    project_left "$project" >/dev/null && return 1
    return 0
}

# Print what a compose project still has (containers, networks, volumes); true if anything.
project_left() {
    local label="label=com.docker.compose.project=$1" left
    left="$( { docker ps -a --format 'container {{.Names}} ({{.Status}})' --filter "$label"
               docker network ls --format 'network {{.Name}}' --filter "$label"
               docker volume ls --format 'volume {{.Name}}' --filter "$label"; } 2>/dev/null)"
    [ -n "$left" ] && { echo "$left"; return 0; }
    return 1
}

# True when the image's loadtest has the `compare` subcommand with its --target mode (issue 7).
# Checked on the help text, not only the exit status: a loadtest without subcommands may exit 0.
has_compare() {
    local help
    help="$(docker run --rm --network none --entrypoint /usr/local/bin/loadtest "$ZOO_IMAGE" \
        compare --help 2>&1)" || return 1
    grep -q -- '--target' <<<"$help"
}

# CPU and memory of each model's container while idle (docker stats). All models run side by side
# during a comparison, so a model that burns CPU while idle (a busy loop) would take it from the
# one being measured on the same CPUs: warn when one uses more than 5% of a CPU.
idle_report() {
    local project="$1"; shift
    local s id ids=() name cpu mem
    for s in "$@"; do
        id="$(docker ps -q --filter "label=com.docker.compose.project=$project" \
            --filter "label=com.docker.compose.service=$s" | head -n1)"
        [ -n "$id" ] && ids+=("$id")
    done
    [ "${#ids[@]}" -gt 0 ] || return 0
    docker stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}' "${ids[@]}" \
        | while read -r name cpu mem; do
            echo "  idle: $name cpu $cpu memory $mem"
            if awk -v c="${cpu%\%}" 'BEGIN { exit !(c > 5) }'; then
                echo "  warning: $name uses $cpu of a CPU while idle: it takes CPU from the model being measured" >&2
            fi
        done
}
