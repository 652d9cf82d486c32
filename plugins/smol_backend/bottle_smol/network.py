"""The bundle's bridge for a smol bottle: a subnet picked like the docker backend picks its bottle network.

Unlike the docker backend's network, this bridge must be routable from the
host: smolvm's host-side gateway opens the microVM's connections from the
host, so the host keeps its address on the bridge. It is still ``internal``,
so the bundle gets no way out through it.
"""

from __future__ import annotations

import ipaddress
import random

from bottle_core.errors import BottleRuntimeError

#: Bottle networks are /24s carved from this range (the docker backend's pool), skipping used ones.
POOL = ipaddress.ip_network("10.213.0.0/16")
PREFIX = 24
BUNDLE_HOST_INDEX = 2  # .1 is the host's own address on the bridge


def engine_subnets() -> list[ipaddress.IPv4Network]:
    """IPv4 subnets of the Docker engine's networks; empty when no engine answers."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            networks = client.api.networks()
        finally:
            client.close()
    except Exception:  # no engine, no socket, no SDK: nothing to avoid there
        return []
    used = []
    for network in networks:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet") or ""
            if subnet and ":" not in subnet:
                used.append(ipaddress.ip_network(subnet, strict=False))
    return used


def host_routes(path: str = "/proc/net/route") -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes other than the default one (Linux), so a bottle never shadows a real LAN."""
    routes = []
    try:
        with open(path, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask:
                    routes.append(ipaddress.ip_network(
                        (ipaddress.IPv4Address(dest.to_bytes(4, "little")),
                         bin(mask).count("1")), strict=False))
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return routes


def pick_subnet(used: list[ipaddress.IPv4Network], rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A free /24 of the pool, from a random start so concurrent bottles rarely race for one."""
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
