#!/usr/bin/env bash
# Copy images from the local Docker engine into the test cluster's containerd (namespace
# k8s.io), where pods with imagePullPolicy: Never find them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$#" -gt 0 ] || die "usage: scripts/cluster.sh import IMAGE..."
need_root "importing images into the test cluster"
[ -s "$ENV_FILE" ] || die "the test cluster is not up (run 'make cluster')"
SOCK="$STATE/containerd/containerd.sock"
for image in "$@"; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image '$image' in the local Docker engine (build it first)"
done
docker save "$@" | timeout 900 ctr --address "$SOCK" -n k8s.io images import - >/dev/null \
    || die "importing $* into the cluster failed (see $LOGS/containerd.log)"
say "cluster: imported $*"
