#!/usr/bin/env bash
# Build the Debian base image locally when it is missing, so that nothing needs
# an image registry: a debootstrap root file system imported under the name
# Dockerfiles use (FROM debian:bookworm-slim), so they build unchanged elsewhere.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

IMAGE="${BOTTLE_BASE_IMAGE:-debian:bookworm-slim}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "base image: $IMAGE present"
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (run scripts/host-packages.sh)"
need_root "debootstrap"
rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
say "base image: debootstrap bookworm into $rootfs (about a minute)"
debootstrap --variant=minbase --include=ca-certificates,git,curl,python3 bookworm "$rootfs" \
    >"$CACHE/debootstrap.log" 2>&1 </dev/null || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
tar -C "$rootfs" -c . | docker import - "$IMAGE" >/dev/null
say "base image: imported as $IMAGE"
