"""Address planning shared by backends: a free /24 for each bottle, the bundle's and agent's addresses in it, and the host's own addresses and routes."""

from __future__ import annotations

import ipaddress
import json
import random
import shutil
import subprocess
from pathlib import Path

from .errors import BottleRuntimeError

#: Bottle networks are /24s carved from this range, skipping any that overlap a network in use.
POOL = ipaddress.ip_network("10.213.0.0/16")
PREFIX = 24
BUNDLE_HOST_INDEX = 2  # .1 is the bridge's own (the engine's nominal gateway, or the host on a routable bridge)
AGENT_HOST_INDEX = 3  # pinned too: both start at once, and a dynamic address could take the bundle's

#: Where no allowed name may lead the bundle, unless the bottle opts a CIDR in (``egress.allow_private``).
PRIVATE_NETWORKS = (
    "0.0.0.0/8",        # "this network"
    "10.0.0.0/8",       # RFC 1918
    "100.64.0.0/10",    # CGNAT (RFC 6598)
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local (cloud metadata services live here)
    "172.16.0.0/12",    # RFC 1918
    "192.0.0.0/24",     # IETF protocol assignments
    "192.168.0.0/16",   # RFC 1918
    "198.18.0.0/15",    # benchmarking
    "224.0.0.0/4",      # multicast
    "240.0.0.0/4",      # reserved, and broadcast
    # IPv6 is off in bottles; these refuse names whose AAAA records point inward all the same.
    "::1/128",          # loopback
    "fc00::/7",         # unique local (ULA)
    "fe80::/10",        # link-local
    "ff00::/8",         # multicast
)
#: Never opted in: loopback inside the bundle is the bundle's own daemons.
NEVER_OPTED_IN = ("127.0.0.0/8", "0.0.0.0/8")


def host_addresses() -> list[ipaddress.IPv4Address]:
    """This machine's own IPv4 addresses, every interface (iproute2's JSON output; none without ``ip``)."""
    ip = shutil.which("ip")
    if ip is None:
        return []
    try:
        out = subprocess.run([ip, "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
        interfaces = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    return [ipaddress.ip_address(a["local"]) for i in interfaces for a in i.get("addr_info", []) if a.get("local")]


def host_routes(path: str | Path = "/proc/net/route") -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes other than the default one (Linux), so a bottle never shadows a real LAN."""
    routes = []
    try:
        with open(path, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask:
                    address = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                    routes.append(ipaddress.ip_network((address, bin(mask).count("1")), strict=False))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return routes


def pick_subnet(used: list[ipaddress.IPv4Network], rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A free /24 of the pool, from a random start so concurrent bottles rarely race for the same one."""
    candidates = list(POOL.subnets(new_prefix=PREFIX))
    start = (rng or random).randrange(len(candidates))
    for offset in range(len(candidates)):
        subnet = candidates[(start + offset) % len(candidates)]
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise BottleRuntimeError(f"no free /{PREFIX} left in {POOL} for a bottle network", hint="run `bottle gc`")


def bundle_ip(subnet: ipaddress.IPv4Network) -> str:
    """The bundle's pinned address in ``subnet``."""
    return str(subnet.network_address + BUNDLE_HOST_INDEX)


def agent_ip(subnet: ipaddress.IPv4Network) -> str:
    """The agent's pinned address in ``subnet``."""
    return str(subnet.network_address + AGENT_HOST_INDEX)
