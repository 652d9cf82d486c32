#!/usr/bin/env bash
# Is the test cluster up and healthy? Exit 0 if so. Prints each daemon's state and the node's,
# unless --quiet.
set -euo pipefail
here="$(dirname "$0")"
. "$here/lib.sh"
. "$here/pids.sh"

quiet=false
[ "${1:-}" != --quiet ] || quiet=true
report() { $quiet || say "$@"; }

if [ ! -d "$STATE" ]; then
    report "cluster: down (no $STATE)"
    exit 1
fi
healthy=true
for name in "${DAEMONS[@]}"; do
    if alive "$name"; then
        report "cluster: $name running (pid $(cat "$PIDS/$name.pid"), log $LOGS/$name.log)"
    else
        report "cluster: $name NOT running (see $LOGS/$name.log)"
        healthy=false
    fi
done
if ! $healthy; then
    report "cluster: stale; 'scripts/cluster.sh up' cleans it and starts again"
    exit 1
fi
if [ ! -s "$ENV_FILE" ]; then
    report "cluster: start-up did not finish (no $ENV_FILE)"
    exit 1
fi
kubectl=("$(cat "$STATE/cache")/bin/kubectl" --kubeconfig "$STATE/kubeconfig" --request-timeout 10s)
if ! "${kubectl[@]}" get --raw /readyz >/dev/null 2>&1; then
    report "cluster: the apiserver does not answer (see $LOGS/kube-apiserver.log)"
    exit 1
fi
ready="$("${kubectl[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
if [ "$ready" != True ]; then
    report "cluster: node $NODE_NAME not Ready (see $LOGS/kubelet.log)"
    exit 1
fi
report "cluster: up, node $NODE_NAME Ready"
$quiet || cat "$ENV_FILE"
