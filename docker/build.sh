#!/usr/bin/env bash
# Build the zoo image (ZOO_IMAGE, default zoo:latest), then regenerate docker/docker-compose.yml
# from the models the image lists.
#
#   docker/build.sh local      binaries built on the host with cargo, on zoo-base:bookworm made with
#                              debootstrap (docker/build-base.sh): needs no image registry
#   docker/build.sh registry   docker/Dockerfile, multi-stage: pulls RUST_IMAGE (rust:1-bookworm)
#                              and RUNTIME_IMAGE (debian:bookworm-slim) unless set to local images
#
# The path also comes from DOCKER_PATH (default local). Other variables: CARGO (cargo),
# ZOO_SKIP_CARGO=1 (local: use target/release as it is), ZOO_BASE_IMAGE (zoo-base:bookworm),
# ZOO_GEN_COMPOSE=0 (leave docker/docker-compose.yml alone), DOCKER_BUILD_ARGS (more options for
# docker build, e.g. "--no-cache --network none").
set -euo pipefail
. "$(dirname "$0")/lib.sh"

path="${1:-${DOCKER_PATH:-local}}"
engine_answers || die "no Docker engine answers (docker version failed)"
read -r -a args <<<"${DOCKER_BUILD_ARGS:-}"
cd "$ZOO_ROOT"

case "$path" in
local)
    if [ "${ZOO_SKIP_CARGO:-0}" != 1 ]; then
        log "cargo build --release -p servers -p loadtest"
        "${CARGO:-cargo}" build --release -p servers -p loadtest
    fi
    for bin in zoo loadtest; do
        [ -x "target/release/$bin" ] || die "target/release/$bin is missing (cargo build --release)"
    done
    "$ZOO_DOCKER_DIR/build-base.sh"
    base="${ZOO_BASE_IMAGE:-zoo-base:bookworm}"
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    cp target/release/zoo target/release/loadtest "$ctx/"
    cp "$ZOO_DOCKER_DIR/Dockerfile.local" "$ctx/Dockerfile"
    log "docker build (local path: host binaries on $base) -> $ZOO_IMAGE"
    docker build "${args[@]}" --build-arg "BASE_IMAGE=$base" -t "$ZOO_IMAGE" "$ctx"
    ;;
registry)
    [ -n "${RUST_IMAGE:-}" ] && args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
    [ -n "${RUNTIME_IMAGE:-}" ] && args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")
    log "docker build (registry path: docker/Dockerfile) -> $ZOO_IMAGE"
    # The context is the files git knows (tracked, or new and not ignored), sent as a tar: never
    # target/ or results/, whichever builder is in use.
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null --no-recursion -cf - -T - \
        | docker build -f docker/Dockerfile "${args[@]}" -t "$ZOO_IMAGE" -
    ;;
*)
    die "unknown path '$path': local or registry"
    ;;
esac

# The binaries must load in the image: a host newer than bookworm would link a newer glibc.
if ! out="$(docker run --rm --network none --entrypoint ldd "$ZOO_IMAGE" \
        /usr/local/bin/zoo /usr/local/bin/loadtest 2>&1)" || grep -q 'not found' <<<"$out"; then
    echo "$out" >&2
    die "the binaries do not load in $ZOO_IMAGE (glibc of the build host newer than the image's?)"
fi
log "$ZOO_IMAGE: $(docker image inspect -f '{{.Size}}' "$ZOO_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'), models: $(image_models | tr '\n' ' ')"
[ "${ZOO_GEN_COMPOSE:-1}" = 0 ] || "$ZOO_DOCKER_DIR/gen-compose.sh"
