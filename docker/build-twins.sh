#!/usr/bin/env bash
# Build `zoo-twins:latest` (ZOO_TWINS_IMAGE), the Python originals of peers/python, without any
# registry: a base like zoo's with python3 added (docker/build-base.sh, ZOO_BASE_EXTRA), the
# pinned wheels downloaded on the host by pip from PyPI, installed `--no-index` in the image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

engine_answers || die "no Docker engine answers (docker version failed)"
image="${ZOO_TWINS_IMAGE:-zoo-twins:latest}"
base="${ZOO_TWINS_BASE_IMAGE:-zoo-twins-base:bookworm}"
ZOO_BASE_IMAGE="$base" ZOO_BASE_EXTRA=python3,python3-venv "$ZOO_DOCKER_DIR/build-base.sh"

# The wheels must fit the image's python (bookworm: 3.11) and glibc (2.36, manylinux_2_36).
pyver="$(docker run --rm --network none --entrypoint python3 "$base" -c \
    'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/python" "$ctx/wheels"
py="$ZOO_ROOT/peers/python"
cp -r "$py/run.py" "$py/twins.json" "$py/requirements.txt" "$py/zoo_twins" "$ctx/python/"
rm -rf "$ctx/python/zoo_twins/__pycache__"
log "pip download: peers/python/requirements.txt as cp$pyver manylinux wheels"
"${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "$pyver" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -r "$py/requirements.txt" -d "$ctx/wheels"
cp "$ZOO_DOCKER_DIR/Dockerfile.twins" "$ctx/Dockerfile"
log "docker build (twins on $base) -> $image"
docker build --build-arg "BASE_IMAGE=$base" -t "$image" "$ctx"
log "$image: $(docker run --rm --network none "$image" --list | awk '{ print $1 }' | tr '\n' ' ')"
