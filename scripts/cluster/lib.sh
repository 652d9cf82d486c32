# Shared by the test-cluster scripts: where the cluster keeps its binaries and its state,
# and the addresses it uses. Sourced, not run.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Machine-level, one cluster per machine: binaries cached by source version, running state.
CLUSTER_CACHE=/var/cache/bottle-cluster
STATE=/var/lib/bottle-cluster
ENV_FILE="$STATE/env"
LOGS="$STATE/logs"
PIDS="$STATE/pids"

# Addresses clear of Docker's default pools (172.17.0.0/16-172.31.0.0/16, 192.168.0.0/16)
# and of bottle networks (10.213.0.0/16, bottle_core/addressing.py).
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
SERVICE_FIRST_IP=10.96.0.1
NODE_IP=10.243.0.1            # a /32 on a bridge with no ports (this kernel has no dummy driver)
NODE_BRIDGE=bcl-node
POD_BRIDGE=bcl-pods
NODE_NAME=bottle-node
# Loopback ports of the cluster's own.
ETCD_CLIENT_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=16443
KUBELET_PORT=10250
# The kubelet rewrites these; saved before start, restored by down.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops)
# The binaries built from Kubernetes' source.
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
PAUSE_IMAGE=localhost/bottle-cluster-pause:latest

# The Kubernetes source version apt would fetch (the deb-src lines must be set up: sources.sh).
source_version() {
    apt-cache showsrc --only-source kubernetes 2>/dev/null | awk '/^Version:/ {print $2}' | sort -V | tail -n 1
}
