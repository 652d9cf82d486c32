"""The agent pod's packet filter: the bundle pod's contract ports are all the agent can connect to.

Installed by the agent pod's init container (the only container of the pod
with NET_ADMIN) in the pod's network namespace, before the agent starts; the
agent itself never holds a capability, so it cannot change it. It works on
any network plugin, where a NetworkPolicy is enforced only by some.
"""

from __future__ import annotations

from collections.abc import Sequence

REFUSE = "REJECT --reject-with icmp-admin-prohibited"


def ipv4_rules(bundle_ip: str, ports: Sequence[int]) -> str:
    """``iptables-restore`` input: out, only new TCP connections to ``bundle_ip`` on ``ports``; in, only answers."""
    if not ports:
        raise ValueError("the bundle listens on no port")
    ports_list = ",".join(str(p) for p in sorted(set(ports)))
    rules = [
        "*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
        "-A INPUT -j REJECT --reject-with icmp-port-unreachable",
        "-A OUTPUT -o lo -j ACCEPT",
        "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-A OUTPUT -d {bundle_ip}/32 -p tcp -m multiport --dports {ports_list} -m conntrack --ctstate NEW -j ACCEPT",
        # Refused at once, so a probe learns nothing by waiting and a client fails fast.
        "-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset",
        f"-A OUTPUT -j {REFUSE}",
        "COMMIT",
    ]
    return "\n".join(rules) + "\n"


def ipv6_rules() -> str:
    """``ip6tables-restore`` input: nothing in or out."""
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]", "COMMIT"]) + "\n"


#: Run by the init container (bundle image: it has iptables): the rules come in the environment.
INSTALL_SCRIPT = (
    'set -e; printf "%s" "$BOTTLE_AGENT_RULES4" | iptables-nft-restore; '
    'if [ -e /proc/net/if_inet6 ]; then printf "%s" "$BOTTLE_AGENT_RULES6" | ip6tables-nft-restore; fi; '
    'echo "bottle-k8s: agent packet filter in place"'
)


def bundle_peer_rule(peer_file: str) -> str:
    """Shell run after the contract's packet filter in the bundle pod: new connections in come from the agent alone.

    On a cluster every pod can address every other, so the bundle's ports
    would answer any pod; this rule, first in INPUT, resets a new TCP
    connection from any address but the agent pod's (loopback aside: the
    bundle's own daemons talk to each other there). The bundle's own address
    is not known when the pod is made, so the rule does not name it.
    """
    return (f'peer="$(cat {peer_file})"; '
            'iptables-nft -I INPUT 1 ! -i lo -p tcp -m conntrack --ctstate NEW ! -s "$peer/32" '
            '-j REJECT --reject-with tcp-reset; echo "bottle-k8s: bundle answers $peer only"')
