"""The bottle network: an internal bridge on which the host has no address.

``internal=True`` alone is not enough: the host keeps an address on the
bridge and a container can reach host services through it. With
``com.docker.network.bridge.inhibit_ipv4`` the host gets no address, the
agent has no default route, and Docker's embedded DNS answers nothing for
outside names, so the bundle is the agent's only peer.
"""

from __future__ import annotations

import ipaddress
import random

from bottle_core.errors import BottleRuntimeError

#: Bottle networks are /24s carved from this range, skipping any that overlap the engine's networks.
POOL = ipaddress.ip_network("10.213.0.0/16")
PREFIX = 24
BUNDLE_HOST_INDEX = 2  # .1 is kept by the engine's IPAM as the (unused) gateway
AGENT_HOST_INDEX = 3  # pinned too: both start at once, and a dynamic address could take the bundle's


def used_subnets(client) -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet the engine's networks hold, plus the host's own routes."""
    used = []
    for network in client.api.networks():
        for config in (network.get("IPAM") or {}).get("Config") or []:
            subnet = config.get("Subnet")
            if subnet and ":" not in subnet:
                used.append(ipaddress.ip_network(subnet, strict=False))
    return used + host_routes()


def host_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes (Linux), so a bottle subnet never shadows a real LAN."""
    routes = []
    try:
        with open("/proc/net/route", encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask == 0:
                    continue
                to_ip = lambda v: ipaddress.IPv4Address(v.to_bytes(4, "little"))  # noqa: E731
                routes.append(ipaddress.ip_network(f"{to_ip(dest)}/{to_ip(mask)}", strict=False))
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
    return str(subnet.network_address + BUNDLE_HOST_INDEX)


def agent_ip(subnet: ipaddress.IPv4Network) -> str:
    return str(subnet.network_address + AGENT_HOST_INDEX)


def create_bottle_network(client, name: str, subnet: str, labels: dict[str, str]):
    """The internal, host-less bridge for one bottle."""
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    return client.networks.create(
        name, driver="bridge", internal=True, ipam=ipam, labels=labels, check_duplicate=True,
        options={"com.docker.network.bridge.inhibit_ipv4": "true"},
    )


def create_outbound_network(client, name: str, labels: dict[str, str]):
    """The bundle's way out: an ordinary bridge of this bottle's own, so bundles never share a segment."""
    return client.networks.create(name, driver="bridge", labels=labels, check_duplicate=True)
