#!/usr/bin/env bash
# Build the local runtime base image `zoo-base:bookworm` from Debian packages, without any image
# registry: debootstrap a minimal bookworm root into a folder, then `docker import` it.
#
# Idempotent: does nothing when the image already exists (pass --force, or set
# ZOO_BASE_REBUILD=1, to build it again). Installs debootstrap with apt when it is missing.
#
# Environment:
#   ZOO_BASE_IMAGE     tag to create                    (default zoo-base:bookworm)
#   ZOO_DEBIAN_MIRROR  Debian mirror for debootstrap    (default: the one apt on this host uses)
#   ZOO_DEBIAN_SUITE   suite                            (default bookworm: same glibc as the host build)
#   ZOO_BASE_EXTRA     more packages, comma-separated   (e.g. gcc,libc6-dev for a build image)
set -euo pipefail

image="${ZOO_BASE_IMAGE:-zoo-base:bookworm}"
suite="${ZOO_DEBIAN_SUITE:-bookworm}"
force="${ZOO_BASE_REBUILD:-0}"
[ "${1:-}" = "--force" ] && force=1

log() { echo "build-base: $*"; }
die() { echo "build-base: error: $*" >&2; exit 1; }

docker version >/dev/null 2>&1 || die "no Docker engine answers (docker version failed)"

if [ "$force" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
    log "$image already exists, nothing to do (--force rebuilds it)"
    exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "debootstrap needs root; run as root or install sudo"
    sudo="sudo"
fi

if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    log "installing debootstrap with apt"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
debootstrap_bin="$(command -v debootstrap || echo /usr/sbin/debootstrap)"

# The mirror apt already uses on this host (deb822 .sources or one-line .list files), so that
# debootstrap goes where apt is known to work. The security archive is skipped.
detect_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
    done
}
mirror="${ZOO_DEBIAN_MIRROR:-$(detect_mirror | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"
log "mirror: $mirror (suite $suite)"

root="$(mktemp -d /var/tmp/zoo-base.XXXXXX)"
cleanup() { $sudo rm -rf --one-file-system "$root"; }
trap cleanup EXIT

# curl for the HEALTHCHECK and for the network tests; ca-certificates so curl can speak TLS.
include="curl,ca-certificates,fonts-dejavu-core${ZOO_BASE_EXTRA:+,$ZOO_BASE_EXTRA}"
$sudo "$debootstrap_bin" --variant=minbase --include="$include" \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    die "debootstrap failed (full log above)"
}
rm -f "$root.log"

# A smaller image: no package lists or caches, no docs.
$sudo chroot "$root" apt-get clean
$sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/tmp/*

log "importing $root as $image"
$sudo tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$include $suite $mirror" \
    - "$image" >/dev/null
log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
