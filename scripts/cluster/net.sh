#!/usr/bin/env bash
# The cluster's network outside the pods: `net.sh up` makes the node's address (a /32 on a
# bridge with no ports) and the forwarding chain; `net.sh down` removes both and the pods'
# bridge. Docker's own chains and networks are left as they are.
#
# The forwarding chain lets pods talk to each other across the pods' bridge and nothing else
# routed: no packet from a pod leaves for another network (off the machine, Docker's
# networks) and none from those networks reaches a pod. Pods still reach the host itself
# (the node address) through INPUT, as on any node.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

CHAIN=BOTTLE-CLUSTER

up() {
    ip link add "$NODE_BRIDGE" type bridge
    ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
    iptables -w -N "$CHAIN"
    iptables -w -A "$CHAIN" -i "$POD_BRIDGE" -o "$POD_BRIDGE" -j ACCEPT
    iptables -w -A "$CHAIN" -i "$POD_BRIDGE" -j DROP
    iptables -w -A "$CHAIN" -o "$POD_BRIDGE" -j DROP
    iptables -w -I FORWARD 1 -j "$CHAIN"
}

down() {
    while iptables -w -D FORWARD -j "$CHAIN" 2>/dev/null; do :; done
    if iptables -w -S "$CHAIN" >/dev/null 2>&1; then
        iptables -w -F "$CHAIN"
        iptables -w -X "$CHAIN"
    fi
    local link
    for link in "$POD_BRIDGE" "$NODE_BRIDGE"; do
        if ip link show "$link" >/dev/null 2>&1; then
            ip link delete "$link"
        fi
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) die "usage: net.sh up|down" ;;
esac
