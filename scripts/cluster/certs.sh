#!/usr/bin/env bash
# Make the cluster's keys and certificates with openssl in $STATE/pki: a CA, the apiserver's
# and the kubelet's serving certificates, one client certificate per component, and the
# service-account signing key pair. Then one kubeconfig per client.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKI="$STATE/pki"
KUBECTL="${1:?usage: certs.sh KUBECTL}"
mkdir -p "$PKI"
chmod 700 "$PKI"
cd "$PKI"

openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -subj /CN=bottle-cluster-ca -days 365 -out ca.crt 2>/dev/null

# sign NAME SUBJECT USAGE [SANS]: NAME.key and NAME.crt signed by the CA.
sign() {
    local name="$1" subject="$2" usage="$3" sans="${4:-}"
    openssl genrsa -out "$name.key" 2048 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr" 2>/dev/null
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [ -z "$sans" ] || echo "subjectAltName=$sans"
    } >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

sign apiserver /CN=kube-apiserver serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$SERVICE_FIRST_IP,IP:$NODE_IP"
sign etcd /CN=etcd serverAuth,clientAuth "DNS:localhost,IP:127.0.0.1"
sign apiserver-etcd-client /CN=kube-apiserver-etcd-client clientAuth
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
sign admin "/O=system:masters/CN=bottle-cluster-admin" clientAuth
sign controller-manager /CN=system:kube-controller-manager clientAuth
sign scheduler /CN=system:kube-scheduler clientAuth
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
sign kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
openssl genrsa -out service-account.key 2048 2>/dev/null
openssl rsa -in service-account.key -pubout -out service-account.pub 2>/dev/null
chmod 600 ./*.key

# kubeconfig NAME FILE: a kubeconfig for client certificate NAME, talking to the apiserver on loopback.
kubeconfig() {
    local name="$1" file="$2"
    "$KUBECTL" config set-cluster bottle --kubeconfig="$file" --certificate-authority="$PKI/ca.crt" \
        --embed-certs=true --server="https://127.0.0.1:$APISERVER_PORT" >/dev/null
    "$KUBECTL" config set-credentials "$name" --kubeconfig="$file" --client-certificate="$PKI/$name.crt" \
        --client-key="$PKI/$name.key" --embed-certs=true >/dev/null
    "$KUBECTL" config set-context bottle --kubeconfig="$file" --cluster=bottle --user="$name" >/dev/null
    "$KUBECTL" config use-context bottle --kubeconfig="$file" >/dev/null
    chmod 600 "$file"
}
kubeconfig admin "$STATE/kubeconfig"
for name in controller-manager scheduler kubelet; do
    kubeconfig "$name" "$PKI/$name.kubeconfig"
done
