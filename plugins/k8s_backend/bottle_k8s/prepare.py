"""``prepare`` for the k8s backend: the Plan, and what the bundle's egress must never reach on this cluster.

The bundle's address is the cluster's to give: the Plan holds a placeholder
(``0.0.0.0``) until the launch learns the bundle pod's IP and saves the Plan
again with it (the ``launch`` hook allows a changed Plan).

A git remote that is a folder on this machine is lent to the bundle pod as
a seed and its pushes come home through the API (:mod:`.home`): the gate
there runs as its own user, not as the folder's owner.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlparse

from bottle_core.errors import BottleRuntimeError, UsageError
from bottle_core.plan import NetworkPlan, Plan, base_plan, new_slug

from . import settings

PLACEHOLDER_IP = "0.0.0.0"
OUTBOUND = "pod network"


def prepare_plan(spec, stage_dir) -> Plan:
    from functools import partial

    from bottle_core.addressing import host_addresses
    from bottle_core.images import resolved_names
    from bottle_docker import sidecar
    from bottle_docker.image_build import base_image_id

    client = sidecar.client()
    bottle = spec.manifest.bottles[spec.bottle_name]
    base, own = bottle.image or sidecar.base_image(), sidecar.base_image()  # the bundle's: the user's base only
    slug = new_slug(spec.agent, stage_dir)
    plan = base_plan(
        spec, backend="k8s", stage_dir=Path(stage_dir), slug=slug,
        network=NetworkPlan(name=f"bottle-{slug}", subnet=f"{PLACEHOLDER_IP}/32", bundle_ip=PLACEHOLDER_IP,
                            outbound=OUTBOUND),
        images=resolved_names(base, own, partial(base_image_id, client)),
        backend_options={"namespace": settings.namespace()},
        unapplied={"pids": "not applied (pods get the kubelet's own process limit)"},
    )
    lend_path_remotes(plan)
    addresses, networks = cluster_ranges()
    plan.egress.refused_networks = sorted({*plan.egress.refused_networks, *networks})
    plan.egress.host_addresses = sorted({*plan.egress.host_addresses, *(str(a) for a in host_addresses()),
                                         *addresses}, key=lambda a: ipaddress.ip_network(a, strict=False))
    return plan


def lend_path_remotes(plan: Plan) -> None:
    """Path remotes are seeded into the bundle pod (see :mod:`.home`): refuse now what cannot be seeded, and let
    the gate run as its own user there (the folder's owner means nothing in a pod)."""
    from .home_repo import refuse_unseedable

    on_host = {name: remote for name, remote in plan.git_gate.remotes.items() if remote.kind == "path"}
    for name, remote in on_host.items():
        refuse_unseedable(Path(remote.git_dir), name)
    if on_host:
        plan.git_gate.run_as = None


def cluster_ranges() -> tuple[list[str], list[str]]:
    """What the bundle's egress refuses on this cluster: addresses always (nodes, API server, its service IP),
    networks unless opted in (pod CIDRs, ``BOTTLE_K8S_CLUSTER_RANGES``)."""
    from kubernetes.client.rest import ApiException

    from .cluster import api_host, core

    api = core()
    addresses: set[str] = set(_resolve(urlparse(api_host()).hostname or ""))
    networks: set[str] = set()
    try:
        for node in api.list_node().items:
            addresses.update(a.address for a in node.status.addresses or [] if _ipv4(a.address))
            networks.update(c for c in [node.spec.pod_cidr, *(node.spec.pod_cidrs or [])] if c and _net4(c))
    except ApiException as exc:
        if exc.status != 403:
            raise BottleRuntimeError(f"the cluster did not list its nodes: {exc.status} {exc.reason}") from None
    try:
        service = api.read_namespaced_service("kubernetes", "default")
        addresses.update(ip for ip in [service.spec.cluster_ip] if ip and _ipv4(ip))
        endpoints = api.read_namespaced_endpoints("kubernetes", "default")
        addresses.update(a.ip for s in endpoints.subsets or [] for a in s.addresses or [] if _ipv4(a.ip))
    except ApiException as exc:
        if exc.status not in (403, 404):
            raise BottleRuntimeError(f"the cluster did not show its API service: {exc.status} {exc.reason}") from None
    for value in (settings.CLUSTER_RANGES.value() or "").split(","):
        if value.strip():
            if not _net4(value.strip()):
                raise UsageError(f"{settings.CLUSTER_RANGES.variable}: {value.strip()!r} is not an IPv4 CIDR",
                                 hint="write CIDRs separated by commas, e.g. 10.96.0.0/12")
            networks.add(str(ipaddress.ip_network(value.strip(), strict=False)))
    return sorted(addresses), sorted(networks)


def _resolve(host: str) -> list[str]:
    if not host:
        return []
    if _ipv4(host):
        return [host]
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET)})
    except OSError:
        return []


def _ipv4(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


def _net4(value: str) -> bool:
    try:
        return ipaddress.ip_network(value, strict=False).version == 4
    except ValueError:
        return False
