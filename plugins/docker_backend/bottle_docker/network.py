"""The bottle network: an internal bridge on which the host has no address.

``internal=True`` alone is not enough: the host keeps an address on the
bridge and a container can reach host services through it. With
``com.docker.network.bridge.inhibit_ipv4`` the host gets no address and
Docker's embedded DNS answers nothing for outside names; with the default
route removed at launch, the bundle is the agent's only peer.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from bottle_core.addressing import (agent_ip, bundle_ip, engine_gateways, engine_subnets, host_addresses, host_routes,
                                    pick_subnet)
from bottle_core.locks import host_lock


SHARED_OUTBOUND = "bottle-outbound"


def used_subnets(client) -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet the engine's networks hold, plus the host's own routes."""
    return engine_subnets(client.api.networks()) + host_routes()


def refuse_engine_and_host(client, plan) -> None:
    """Name, in the plan, what the egress stage must never connect to besides the private ranges.

    The engine's networks (refused unless opted in) and the host's own
    addresses, every interface and every bridge gateway (refused always).
    """
    networks = client.api.networks()
    engine = [str(n) for n in engine_subnets(networks)] + [plan.network.subnet]
    plan.egress.refused_networks = sorted({*plan.egress.refused_networks, *engine})
    plan.egress.host_addresses = sorted({str(a) for a in [*host_addresses(), *engine_gateways(networks)]},
                                        key=lambda a: ipaddress.ip_address(a))


def create_bottle_network(client, name: str, subnet: str, labels: dict[str, str]):
    """The internal, host-less bridge for one bottle."""
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    network = client.networks.create(
        name, driver="bridge", internal=True, ipam=ipam, labels=labels, check_duplicate=True, enable_ipv6=False,
        options={"com.docker.network.bridge.inhibit_ipv4": "true"},
    )
    bridge_ipv6_off(bridge_name(network.id))
    return network


def bridge_name(network_id: str) -> str:
    """The host interface of a bridge network the engine named itself."""
    return f"br-{network_id[:12]}"


def bridge_ipv6_off(bridge: str, proc: Path = Path("/proc/sys/net/ipv6/conf")) -> bool:
    """Turn IPv6 off on the bottle bridge on the host, so the host holds no address there (no link-local).

    Done before any container joins (the kernel gives a bridge its link-local
    address once a port comes up). Possible when bottle runs as root on the
    engine's own host; elsewhere the bridge may keep a link-local address,
    which the agent, with IPv6 off, cannot use. Returns whether it was done.
    """
    try:
        (proc / bridge / "disable_ipv6").write_text("1\n")
    except OSError:
        return False
    return True


def ensure_shared_outbound(client) -> None:
    """The bundles' way out: one NATed bridge they all join, with inter-container traffic off.

    One network for every bottle, rather than one each: the engine's address
    pools hold only ~30 networks, and creating and removing a network costs a
    launch ~0.3 s. With ICC off no two bundles can reach each other on it.
    Created on first use and kept (it carries no bottle's slug, so gc leaves it).
    """
    from docker.errors import APIError

    # Two launches at once must not both create it (the engine may allow duplicate names).
    with host_lock("outbound"):
        if any(n["Name"] == SHARED_OUTBOUND for n in client.api.networks(names=[SHARED_OUTBOUND])):
            return
        try:
            client.networks.create(SHARED_OUTBOUND, driver="bridge", check_duplicate=True,
                                   labels={"bottle.role": "shared-outbound"},
                                   options={"com.docker.network.bridge.enable_icc": "false"})
        except APIError as exc:
            if "already exists" not in str(exc):
                raise


def readdress(client, plan) -> None:
    """Move the plan's bottle network to a free subnet (another bottle took it since ``prepare``), and save it."""
    net = plan.network
    subnet = pick_subnet(used_subnets(client) + [ipaddress.ip_network(net.subnet)])
    net.subnet, net.bundle_ip, net.agent_ip = str(subnet), bundle_ip(subnet), agent_ip(subnet)
    plan.proxy.listen_host = net.bundle_ip
    plan.save()
