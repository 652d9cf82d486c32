#!/usr/bin/env bash
# The cluster's network outside the pods: `net.sh up` makes the node's address (a /32 on a
# bridge with no ports) and the forwarding chain; `net.sh down` removes both and the pods'
# bridge. Docker's own chains and networks are left as they are.
#
# The forwarding chain lets pods talk to each other across the pods' bridge and nothing else
# routed: no packet from a pod leaves for another network (off the machine, Docker's
# networks) and none from those networks reaches a pod. Pods still reach the host itself
# (the node address) through INPUT, as on any node. `net.sh link SUBNET` opens one way
# through it for tests: pods may open connections to SUBNET (a Docker network standing in for
# the internet) and get the replies; nothing on SUBNET may open a connection to a pod.
# `net.sh unlink SUBNET` closes it again. It is jumped to from FORWARD and from
# Docker's DOCKER-USER: Docker puts each new network's ACCEPT rules at the top of FORWARD,
# above ours, but always sends FORWARD through DOCKER-USER first. Its rules match the pods'
# bridge only, so Docker's own traffic and isolation are untouched.
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
    if iptables -w -S DOCKER-USER >/dev/null 2>&1; then
        iptables -w -I DOCKER-USER 1 -j "$CHAIN"
    fi
}

down() {
    local parent
    for parent in FORWARD DOCKER-USER; do
        while iptables -w -D "$parent" -j "$CHAIN" 2>/dev/null; do :; done
    done
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

link_rules() {
    local action="$1" subnet="$2"
    iptables -w "$action" "$CHAIN" -i "$POD_BRIDGE" -d "$subnet" -j ACCEPT
    iptables -w "$action" "$CHAIN" -s "$subnet" -o "$POD_BRIDGE" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
}

link() {
    local subnet="${1:?usage: scripts/cluster.sh link SUBNET}"
    [[ "$subnet" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] \
        || die "link: '$subnet' is not an IPv4 subnet like 172.30.0.0/16"
    iptables -w -S "$CHAIN" >/dev/null 2>&1 || die "link: the test cluster is not up (run 'make cluster')"
    unlink "$subnet"
    # Above the chain's DROP rules.
    iptables -w -I "$CHAIN" 1 -s "$subnet" -o "$POD_BRIDGE" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    iptables -w -I "$CHAIN" 1 -i "$POD_BRIDGE" -d "$subnet" -j ACCEPT
}

unlink() {
    while link_rules -D "$1" 2>/dev/null; do :; done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    link) need_root "linking the test cluster's pods to a subnet"; link "${2:-}" ;;
    unlink) need_root "unlinking a subnet from the test cluster's pods"; unlink "${2:?usage: scripts/cluster.sh unlink SUBNET}" ;;
    *) die "usage: net.sh up|down|link SUBNET|unlink SUBNET" ;;
esac
