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

from bottle_core.addressing import agent_ip, bundle_ip, host_addresses, host_routes, pick_subnet
from bottle_core.locks import host_lock


SHARED_OUTBOUND = "bottle-outbound"


def engine_subnets(networks: list[dict]) -> list[ipaddress.IPv4Network]:
    """The IPv4 subnets in the engine's network list (the ``/networks`` answer)."""
    return [ipaddress.ip_network(subnet, strict=False) for subnet in _ipam(networks, "Subnet")]


def engine_gateways(networks: list[dict]) -> list[ipaddress.IPv4Address]:
    """The gateway addresses in the engine's network list: the engine host's own addresses on its bridges."""
    return [ipaddress.ip_address(gateway.split("/")[0]) for gateway in _ipam(networks, "Gateway")]


def _ipam(networks: list[dict], key: str) -> list[str]:
    """Every IPv4 ``key`` value of the networks' IPAM configs."""
    return [value for network in networks for config in (network.get("IPAM") or {}).get("Config") or []
            if (value := config.get(key) or "") and ":" not in value]


def used_subnets(client) -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet the engine's networks hold, plus the host's own routes."""
    return engine_subnets(client.api.networks()) + host_routes()


def refuse_engine_and_host(client, plan) -> None:
    """Name, in the plan, what the egress stage must never connect to besides the private ranges.

    The engine's networks (refused unless opted in) and the host's own
    addresses, every interface and every bridge gateway (refused always).
    """
    refuse_networks(plan, client.api.networks())


def refuse_networks(plan, networks: list[dict], *, also_host: list[str] = ()) -> None:
    """:func:`refuse_engine_and_host` from an engine's network list (``also_host``: more of the host's addresses)."""
    engine = [str(n) for n in engine_subnets(networks)] + [plan.network.subnet]
    plan.egress.refused_networks = sorted({*plan.egress.refused_networks, *engine})
    plan.egress.host_addresses = sorted({str(a) for a in [*host_addresses(), *engine_gateways(networks), *also_host]},
                                        key=lambda a: ipaddress.ip_address(a))


def create_bottle_network(client, name: str, subnet: str, labels: dict[str, str], *, host_address: bool = False):
    """The internal, host-less bridge for one bottle, IPv6 off.

    ``host_address`` keeps the host's address on the bridge, for a backend
    whose agent reaches the bundle from a host process (smol: smolvm's
    gateway); it is still internal, so nothing on it is routed elsewhere.
    """
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    network = client.networks.create(
        name, driver="bridge", internal=True, ipam=ipam, labels=labels, check_duplicate=True, enable_ipv6=False,
        options={} if host_address else {"com.docker.network.bridge.inhibit_ipv4": "true"},
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


def outbound_name() -> str:
    """The network bundles leave through: ``BOTTLE_DOCKER_OUTBOUND_NETWORK``, else the shared one."""
    from .settings import OUTBOUND_NETWORK

    return OUTBOUND_NETWORK.value() or SHARED_OUTBOUND


def ensure_shared_outbound(client) -> None:
    """The bundles' way out: one NATed bridge they all join, with inter-container traffic off.

    One network for every bottle, rather than one each: the engine's address
    pools hold only ~30 networks, and creating and removing a network costs a
    launch ~0.3 s. With ICC off no two bundles can reach each other on it.
    Created on first use and kept (it carries no bottle's slug, so gc leaves it).
    """
    from docker.errors import APIError

    def exists() -> bool:
        return any(n["Name"] == SHARED_OUTBOUND for n in client.api.networks(names=[SHARED_OUTBOUND]))

    # Made once and kept: a crowd of launches finds it without queueing on the lock.
    if exists():
        return
    # Two launches at once must not both create it (the engine may allow duplicate names).
    with host_lock("outbound"):
        if exists():
            return
        try:
            client.networks.create(SHARED_OUTBOUND, driver="bridge", check_duplicate=True,
                                   labels={"bottle.role": "shared-outbound"},
                                   options={"com.docker.network.bridge.enable_icc": "false"})
        except APIError as exc:
            if "already exists" not in str(exc):
                raise


NETWORK_ATTEMPTS = 4


def create_for(client, plan, labels: dict[str, str], *, host_address: bool = False):
    """Create the plan's bottle network; returns the Plan it was made for.

    A subnet another bottle took since ``prepare`` is no error: the network
    is made on a free subnet instead, and a new Plan saying so is returned
    (and saved again as plan.json). The Plan given is never changed.
    """
    from docker.errors import APIError

    for attempt in range(NETWORK_ATTEMPTS):
        try:
            create_bottle_network(client, plan.network.name, plan.network.subnet, labels, host_address=host_address)
        except APIError as exc:
            if "overlap" not in str(exc).lower() or attempt == NETWORK_ATTEMPTS - 1:
                raise
            plan = readdressed(client, plan)
            continue
        return plan
    raise AssertionError("unreachable")  # the last attempt returns or raises


def readdressed(client, plan):
    """A new Plan whose bottle network sits on a free subnet (the plan's own was taken since ``prepare``), saved."""
    net = plan.network
    subnet = pick_subnet(used_subnets(client) + [ipaddress.ip_network(net.subnet)])
    moved = plan.model_copy(deep=True, update={
        "network": net.model_copy(update={"subnet": str(subnet), "bundle_ip": bundle_ip(subnet),
                                          "agent_ip": agent_ip(subnet) if net.agent_ip else None}),
        "proxy": plan.proxy.model_copy(update={"listen_host": bundle_ip(subnet)}),
        # The new subnet is an engine network now: refused to the egress stage like the old one.
        "egress": plan.egress.model_copy(update={
            "refused_networks": sorted({*plan.egress.refused_networks, str(subnet)})}),
    })
    moved.save()
    return moved
