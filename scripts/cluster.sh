#!/usr/bin/env bash
# The one-node Kubernetes cluster the tests run against (docs/kubernetes.md, "The test cluster").
#
#   scripts/cluster.sh up             build if not cached, start, wait until Ready; prints KUBECONFIG=...
#   scripts/cluster.sh down           stop it and remove every trace (the build cache stays)
#   scripts/cluster.sh status         is it up and healthy? (exit status 0 if so)
#   scripts/cluster.sh import IMAGE...  copy images from the local Docker engine into the cluster
#   scripts/cluster.sh link SUBNET    let pods open connections to SUBNET (a test network on this host)
#   scripts/cluster.sh unlink SUBNET  close that again
#   scripts/cluster.sh build          only build (or find cached) the binaries; prints their folder
set -euo pipefail
here="$(dirname "$0")/cluster"
command="${1:-}"
[ "$#" -eq 0 ] || shift
# One cluster per machine: starts and stops wait for each other (two test runs at once).
serialised() {
    exec 9>/run/lock/bottle-cluster.lock
    flock -w 900 9 || { echo "error: another 'scripts/cluster.sh up/down' held the lock for 15 min" >&2; exit 1; }
    exec "$@"
}
case "$command" in
    up) serialised "$here/up.sh" ;;
    down) serialised "$here/down.sh" ;;
    status) exec "$here/status.sh" ;;
    import) exec "$here/import.sh" "$@" ;;
    link | unlink) exec "$here/net.sh" "$command" "$@" ;;
    build) exec "$here/build.sh" ;;
    *) echo "usage: scripts/cluster.sh up|down|status|import IMAGE...|link SUBNET|unlink SUBNET|build" >&2; exit 2 ;;
esac
