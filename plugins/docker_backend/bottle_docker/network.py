"""The bottle network: an internal bridge on which the host has no address.

``internal=True`` alone is not enough: the host keeps an address on the
bridge and a container can reach host services through it. With
``com.docker.network.bridge.inhibit_ipv4`` the host gets no address and
Docker's embedded DNS answers nothing for outside names; with the default
route removed at launch, the bundle is the agent's only peer.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import tempfile
from pathlib import Path

from bottle_core.addressing import agent_ip, bundle_ip, engine_subnets, host_routes, pick_subnet


SHARED_OUTBOUND = "bottle-outbound"


def used_subnets(client) -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet the engine's networks hold, plus the host's own routes."""
    return engine_subnets(client.api.networks()) + host_routes()


def create_bottle_network(client, name: str, subnet: str, labels: dict[str, str], *, host_address: bool = False):
    """The internal, host-less bridge for one bottle.

    ``host_address`` keeps the host's address on the bridge, for a backend
    whose agent reaches the bundle from a host process (smol: smolvm's
    gateway); it is still internal, so nothing on it is routed elsewhere.
    """
    from docker.types import IPAMConfig, IPAMPool

    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
    return client.networks.create(
        name, driver="bridge", internal=True, ipam=ipam, labels=labels, check_duplicate=True,
        options={} if host_address else {"com.docker.network.bridge.inhibit_ipv4": "true"},
    )


def outbound_name() -> str:
    """The network bundles leave through: ``BOTTLE_DOCKER_OUTBOUND_NETWORK``, else the shared one."""
    from bottle_core import settings

    return settings.current().docker_outbound_network or SHARED_OUTBOUND


def ensure_shared_outbound(client) -> None:
    """The bundles' way out: one NATed bridge they all join, with inter-container traffic off.

    One network for every bottle, rather than one each: the engine's address
    pools hold only ~30 networks, and creating and removing a network costs a
    launch ~0.3 s. With ICC off no two bundles can reach each other on it.
    Created on first use and kept (it carries no bottle's slug, so gc leaves it).
    """
    from docker.errors import APIError

    with _host_lock("outbound"):
        if any(n["Name"] == SHARED_OUTBOUND for n in client.api.networks(names=[SHARED_OUTBOUND])):
            return
        try:
            client.networks.create(SHARED_OUTBOUND, driver="bridge", check_duplicate=True,
                                   labels={"bottle.role": "shared-outbound"},
                                   options={"com.docker.network.bridge.enable_icc": "false"})
        except APIError as exc:
            if "already exists" not in str(exc):
                raise


@contextlib.contextmanager
def _host_lock(name: str):
    # Two launches at once must not both create the shared network (the engine may allow duplicate names).
    path = Path(tempfile.gettempdir()) / f"bottle-{name}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    })
    moved.save()
    return moved
