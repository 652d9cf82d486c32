"""The bundle's packet filter: a bug in the proxy still does not open the host.

Run once, as root with NET_ADMIN (and NET_RAW for the legacy backend), in the
bundle's network namespace but not in the bundle (the bundle itself never
holds a capability): ``python3 -m bottle_core.bundle.image.netfilter`` with the bundle's
configuration at ``BOTTLE_BUNDLE_CONFIG``. The rules:

* inbound, only new connections to the bundle's listening ports on its
  bottle-side address (and answers to what the bundle opened);
* outbound, only the egress stage's user opens connections, and never to
  loopback or the bundle's own addresses (DNS to the resolvers excepted, and
  in a rehearsal the scripted model's one loopback port), the host's
  addresses, or the private ranges and engine networks that
  ``egress_stage`` refuses (opted-in CIDRs excepted); the proxy's user may
  reach the egress stage on loopback and nothing else; the git gate's user,
  when it has an https upstream, the proxy's port on the bottle-side address
  (it pushes through the proxy, which lets it reach its upstreams alone);
  every other daemon (and the entry point, which checks readiness in the
  kernel's socket table) only answers;
* IPv6: nothing in, nothing out.

The rules go into the iptables backend (nf_tables or legacy) that already
holds the engine's DNS rules in this namespace (Docker's 127.0.0.11), so both
sets live side by side and the engine's resolver keeps working for the
egress stage.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

from . import daemons as daemon_table
from .accounts import account, uids
from .egress_stage import never_allowed, opted_in, refused

DNS_PORT = 53
# Refused at once ("administratively prohibited": EHOSTUNREACH), where a drop would leave the
# egress stage waiting out its connect timeout before it could answer.
REFUSE = "REJECT --reject-with icmp-admin-prohibited"


def nameservers(resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    """The IPv4 resolvers the egress stage asks (the engine's, 127.0.0.11 on a Docker network)."""
    found = []
    try:
        for line in Path(resolv_conf).read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver" and ipaddress.ip_address(fields[1]).version == 4:
                found.append(fields[1])
    except (OSError, ValueError):
        pass
    return found


def ipv4_rules(config: dict, resolvers: list[str], account=account) -> str:
    """The IPv4 filter table, as ``iptables-restore`` input: each daemon's user may open what its row of the
    daemon table lists; the one that connects out, also the resolvers and what the egress policy allows."""
    egress, bundle_ip = config["egress"], config["proxy"]["listen_host"]
    rows = daemon_table.running(config)
    uid = uids(config, rows, account)
    (out,) = [row for row in rows if row.connects_out]
    v4 = lambda networks: [n for n in networks if ipaddress.ip_network(n).version == 4]  # noqa: E731
    reach = sorted({(uid[row.name], host, port) for row in rows for host, port in row.reaches(config)})
    rules = [
        "*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        *(f"-A INPUT -d {bundle_ip}/32 -p tcp --dport {port} -m conntrack --ctstate NEW -j ACCEPT"
          for port in daemon_table.bottle_side_ports(config)),
        # Any other port looks closed, as it would with nothing listening (a drop would stall the client).
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
        "-A INPUT -j REJECT --reject-with icmp-port-unreachable",
        "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        # What each daemon may reach inside the bundle (the proxy: the egress stage; the gate: the proxy; ...).
        *(f"-A OUTPUT -o lo -d {host}/32 -p tcp --dport {port} -m owner --uid-owner {user} -j ACCEPT"
          for user, host, port in reach),
        # The engine rewrites the resolver's port (Docker: DNAT to 127.0.0.11:<random>); match the port asked for.
        *(f"-A OUTPUT -d {ns}/32 -p {proto} -m conntrack --ctorigdstport {DNS_PORT} -m owner --uid-owner {uid[out.name]} -j ACCEPT"
          for ns in resolvers for proto in ("udp", "tcp")),
        f"-A OUTPUT -m owner ! --uid-owner {uid[out.name]} -j {REFUSE}",
        f"-A OUTPUT -o lo -j {REFUSE}",
        *(f"-A OUTPUT -d {n} -j {REFUSE}" for n in v4(never_allowed(egress))),
        *(f"-A OUTPUT -d {n} -j ACCEPT" for n in v4(opted_in(egress))),
        *(f"-A OUTPUT -d {n} -j {REFUSE}" for n in v4(refused(egress))),
        "-A OUTPUT -j ACCEPT",
        "COMMIT",
    ]
    return "\n".join(rules) + "\n"


def ipv6_rules() -> str:
    """The IPv6 filter table: nothing in or out (IPv6 is off in the bundle; this holds if it were not)."""
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]", "COMMIT"]) + "\n"


def engine_backend() -> str:
    """``legacy`` when the engine's own rules in this namespace are in the legacy tables, else ``nft``."""
    saved = subprocess.run(["iptables-legacy-save", "-t", "nat"], capture_output=True, text=True)
    return "legacy" if saved.returncode == 0 and "DOCKER_OUTPUT" in saved.stdout else "nft"


def restore(command: str, rules: str) -> None:
    result = subprocess.run([command], input=rules, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bottle-netfilter: {command} failed: {result.stderr.strip() or result.returncode}")


def main() -> None:
    config = json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))
    backend = engine_backend()
    rules = ipv4_rules(config, nameservers())
    restore(f"iptables-{backend}-restore", rules)
    if Path("/proc/net/if_inet6").exists():
        restore(f"ip6tables-{backend}-restore", ipv6_rules())
    print(f"bottle-netfilter: rules in place ({backend})", flush=True)


if __name__ == "__main__":
    main()
