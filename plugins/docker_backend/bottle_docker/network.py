"""The bottle network: an internal bridge on which the host has no address.

``internal=True`` alone is not enough: the host keeps an address on the
bridge and a container can reach host services through it. With
``com.docker.network.bridge.inhibit_ipv4`` the host gets no address and
Docker's embedded DNS answers nothing for outside names; with the default
route removed at launch, the bundle is the agent's only peer.
"""

from __future__ import annotations

import ipaddress

from bottle_core.addressing import agent_ip, bundle_ip, engine_subnets, host_routes, pick_subnet


def used_subnets(client) -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet the engine's networks hold, plus the host's own routes."""
    return engine_subnets(client.api.networks()) + host_routes()


def create_bottle_network(client, name: str, subnet: str, labels: dict[str, str]):
    """The internal, host-less bridge for one bottle."""
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    return client.networks.create(
        name, driver="bridge", internal=True, ipam=ipam, labels=labels, check_duplicate=True,
        options={"com.docker.network.bridge.inhibit_ipv4": "true"},
    )


def create_outbound_network(client, name: str, subnet: str, labels: dict[str, str]):
    """The bundle's way out: an ordinary (NATed) bridge of this bottle's own, so bundles never share a segment."""
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    return client.networks.create(name, driver="bridge", ipam=ipam, labels=labels, check_duplicate=True)


def readdress(client, plan, fields: list[str]) -> None:
    """Give the named subnets of ``plan.network`` ("subnet", "outbound_subnet") free ones, and save the plan."""
    net = plan.network
    used = used_subnets(client) + [ipaddress.ip_network(s) for s in (net.subnet, net.outbound_subnet) if s]
    for field in fields:
        subnet = pick_subnet(used)
        used.append(subnet)
        setattr(net, field, str(subnet))
        if field == "subnet":
            net.bundle_ip, net.agent_ip = bundle_ip(subnet), agent_ip(subnet)
            plan.proxy.listen_host = net.bundle_ip
    plan.save()
