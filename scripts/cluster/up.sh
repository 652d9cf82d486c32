#!/usr/bin/env bash
# Start the one-node test cluster (see docs/kubernetes.md, "The test cluster"), building it
# first if this source version is not cached. Idempotent: a healthy cluster is left as is;
# stale state (its processes gone) is cleaned away first. Returns once the node is Ready and
# the default service account exists, and prints the KUBECONFIG to use.
set -euo pipefail
here="$(dirname "$0")"
. "$here/lib.sh"

need_root "starting the test cluster"
if "$here/status.sh" --quiet; then
    say "cluster: already up"
    echo "KUBECONFIG=$STATE/kubeconfig"
    exit 0
fi
if [ -e "$STATE" ]; then
    say "cluster: stale or unfinished state in $STATE (see scripts/cluster.sh status), cleaning it first"
    "$here/down.sh"
fi
"$here/packages.sh"
cache="$("$here/build.sh")"
BIN="$cache/bin"
KUBECTL=("$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" --request-timeout 10s)
started=$(date +%s)

mkdir -p "$STATE" "$LOGS" "$PIDS"
chmod 700 "$STATE"
echo "$cache" >"$STATE/cache"
ip netns list 2>/dev/null | awk '{print $1}' >"$STATE/netns.before"
for key in "${SYSCTLS[@]}"; do
    echo "$key=$(sysctl -n "$key")"
done >"$STATE/sysctls"

# launch NAME COMMAND...: start a daemon detached from the caller (its own session, output to
# its log), record its pid.
launch() {
    local name="$1"
    shift
    # 9>&-: not the start/stop lock (scripts/cluster.sh), which must end with this script.
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$PIDS/$name.pid"
}

# wait_for NAME SECONDS COMMAND...: poll COMMAND until it succeeds; fail naming NAME's log
# when NAME's process exits or the time is up.
wait_for() {
    local name="$1" limit="$2"
    local deadline=$(( $(date +%s) + limit ))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$(cat "$PIDS/$name.pid")" 2>/dev/null; then
            tail -n 20 "$LOGS/$name.log" >&2 || true
            die "cluster: $name exited during start-up (see $LOGS/$name.log)"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || die "cluster: $name not ready within ${limit}s (see $LOGS/$name.log)"
        sleep 1
    done
}

# The node's address and the forwarding chain that keeps pods on their bridge.
"$here/net.sh" up

"$here/certs.sh" "$BIN/kubectl"
PKI="$STATE/pki"

# A private containerd, never Docker's: its own config, root, state, socket and runc root.
mkdir -p "$STATE/containerd" "$STATE/cni/net.d"
cat >"$STATE/containerd/config.toml" <<TOML
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd/containerd.sock"
[ttrpc]
  address = "$STATE/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # These machines drop CAP_SYS_RESOURCE: nobody may lower oom_score_adj, so do not try.
  restrict_oom_score_adj = true
  # Pod network namespaces under our state, so down finds every one.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
      Root = "$STATE/runc"
TOML
# The pod network: one bridge, addresses from the pod subnet, no NAT (pods reach nothing off the node).
cat >"$STATE/cni/net.d/10-bottle.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "bottle-cluster",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    {"type": "loopback"}
  ]
}
JSON
SOCK="$STATE/containerd/containerd.sock"
launch containerd containerd --config "$STATE/containerd/config.toml"
wait_for containerd 60 timeout 10 ctr --address "$SOCK" version
timeout 120 ctr --address "$SOCK" -n k8s.io images import "$cache/pause.tar" >/dev/null \
    || die "cluster: importing the pause image into containerd failed (see $LOGS/containerd.log)"

launch etcd etcd --name bottle-cluster --data-dir "$STATE/etcd" \
    --listen-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "https://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bottle-cluster=http://127.0.0.1:$ETCD_PEER_PORT" \
    --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" \
    --client-cert-auth --trusted-ca-file "$PKI/ca.crt"
wait_for etcd 60 curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" \
    --key "$PKI/apiserver-etcd-client.key" "https://127.0.0.1:$ETCD_CLIENT_PORT/health"

launch kube-apiserver "$BIN/kube-apiserver" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address "$NODE_IP" \
    --etcd-servers "https://127.0.0.1:$ETCD_CLIENT_PORT" --etcd-cafile "$PKI/ca.crt" \
    --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --authorization-mode Node,RBAC --anonymous-auth=false \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/service-account.pub" \
    --service-account-signing-key-file "$PKI/service-account.key" \
    --enable-admission-plugins NodeRestriction --allow-privileged=true
wait_for kube-apiserver 120 "${KUBECTL[@]}" get --raw /readyz

launch kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --port 0 \
    --controllers '*,-nodeipam,-service,-route,-cloud-node-lifecycle' \
    --use-service-account-credentials \
    --service-account-private-key-file "$PKI/service-account.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --leader-elect=false
launch kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --port 0 --leader-elect=false

mkdir -p "$STATE/kubelet"
cat >"$STATE/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
cgroupDriver: cgroupfs
failSwapOn: false
makeIPTablesUtilChains: false
# A test machine, busy and shared: evict nothing, collect no images.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podPidsLimit: 4096
staticPodPath: ""
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
YAML
launch kubelet "$BIN/kubelet" \
    --config "$STATE/kubelet/config.yaml" --kubeconfig "$PKI/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet/root" --cert-dir "$STATE/kubelet/pki" \
    --container-runtime remote --container-runtime-endpoint "unix://$SOCK" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" \
    --pod-infra-container-image "$PAUSE_IMAGE"

node_ready() {
    [ "$("${KUBECTL[@]}" get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
wait_for kubelet 180 node_ready
wait_for kube-controller-manager 120 "${KUBECTL[@]}" get serviceaccount default -n default

cat >"$ENV_FILE" <<ENV
KUBECONFIG=$STATE/kubeconfig
CONTAINERD_ADDRESS=unix://$SOCK
ENV
say "cluster: up in $(( $(date +%s) - started ))s (node $NODE_NAME at $NODE_IP, logs in $LOGS)"
echo "KUBECONFIG=$STATE/kubeconfig"
