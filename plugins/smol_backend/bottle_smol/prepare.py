"""``prepare`` for the smol backend: a Plan whose bundle sits on a host-routable bridge."""

from __future__ import annotations

from pathlib import Path

from bottle_core import addressing, settings
from bottle_core.plan import NetworkPlan, Plan, base_plan, new_slug, resources_of
from bottle_core.spec import BottleSpec

from bottle_docker.sidecar import outbound_name, refuse_networks

from . import network
from .images import planned_images
from .binary import find, format_version, version_of
from .machine import cpus, machine_name, mem_mib

BACKEND = "smol"
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"


def images(spec: BottleSpec) -> dict[str, str]:
    """Image names by role: the content-hash names every backend uses (see :mod:`bottle_core.images`)."""
    bottle = spec.manifest.bottles[spec.bottle_name]
    own = settings.current().base_image or DEFAULT_BASE_IMAGE  # the bundle's base: the user's, never the manifest's
    return planned_images(bottle.image or own, bundle_base=own)


def prepare_plan(spec: BottleSpec, stage_dir: Path) -> Plan:
    """Resolve ``spec``: pick the bundle's subnet and address, record the smolvm binary, machine name and size.

    Launch reads what is recorded here (``backend_options``) rather than working it out again.
    """
    networks = network.engine_networks()
    subnet = addressing.pick_subnet(network.engine_subnets(networks) + addressing.host_routes())
    bundle_ip = addressing.bundle_ip(subnet)
    slug = new_slug(spec.agent, stage_dir)
    net = NetworkPlan(name=f"bottle-{slug}", subnet=str(subnet), bundle_ip=bundle_ip, outbound=outbound_name())
    binary = find()
    resources = resources_of(spec.manifest.bottles[spec.bottle_name])
    options = {
        "smolvm": binary.path,
        "smolvm_source": binary.source,
        "smolvm_version": format_version(version_of(binary)),
        "machine": machine_name(slug),
        "cpus": cpus(resources),
        "mem_mib": mem_mib(resources),
    }
    unapplied = {"pids": "not applied (a microVM has no per-bottle process limit)"}
    if options["cpus"] != resources.cpus:
        unapplied["cpus"] = f"applied as {options['cpus']} whole vCPUs"
    plan = base_plan(spec, backend=BACKEND, stage_dir=stage_dir, network=net, images=images(spec),
                     backend_options=options, slug=slug, unapplied=unapplied)
    # The egress stage never reaches the engine's networks, nor the host (its address on this bridge included).
    refuse_networks(plan, networks, also_host=[str(subnet.network_address + 1)])
    return plan
