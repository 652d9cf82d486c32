"""Address planning shared by backends: a free /24 for each bottle, and the bundle's and agent's addresses in it."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from .errors import BottleRuntimeError

#: Bottle networks are /24s carved from this range, skipping any that overlap a network in use.
POOL = ipaddress.ip_network("10.213.0.0/16")
PREFIX = 24
BUNDLE_HOST_INDEX = 2  # .1 is the bridge's own (the engine's nominal gateway, or the host on a routable bridge)
AGENT_HOST_INDEX = 3  # pinned too: both start at once, and a dynamic address could take the bundle's


def engine_subnets(networks: list[dict]) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets in a Docker engine's network list (the ``/networks`` answer)."""
    used = []
    for network in networks:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet") or ""
            if subnet and ":" not in subnet:
                used.append(ipaddress.ip_network(subnet, strict=False))
    return used


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
