#!/usr/bin/env bash
# Take down everything the docker targets start: the comparison (project `zoo`) and the test
# (project `zoo-test`): containers, networks, volumes. Images stay (DOCKER_CLEAN_IMAGES=1 removes
# ZOO_IMAGE and the base image too). Leaves nothing running; says so, or fails naming what is left.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! engine_answers; then
    log "no Docker engine answers: nothing to clean"
    exit 0
fi
status=0
for project in zoo zoo-test; do
    compose -p "$project" -f "$ZOO_DOCKER_DIR/docker-compose.yml" --profile compare \
        down -v --remove-orphans -t 15 >/dev/null 2>&1 || true
    if ! remove_project "$project"; then
        echo "left behind in $project:" >&2
        project_left "$project" >&2
        status=1
    fi
done
if [ "${DOCKER_CLEAN_IMAGES:-0}" = 1 ]; then
    docker image rm "$ZOO_IMAGE" "${ZOO_BASE_IMAGE:-zoo-base:bookworm}" >/dev/null 2>&1 || true
    log "removed images $ZOO_IMAGE and ${ZOO_BASE_IMAGE:-zoo-base:bookworm}"
fi
[ "$status" = 0 ] && log "nothing left running (projects zoo, zoo-test)"
exit "$status"
