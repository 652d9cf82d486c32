"""The docker backend's hook implementations (entry point ``bottle.backends: docker``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability.
"""

from __future__ import annotations

from pathlib import Path

from bottle_core import hookimpl

@hookimpl
def backend_availability():
    from .engine import availability

    return availability()


@hookimpl
def backend_settings():
    from .settings import ALL

    return ALL


@hookimpl
def backend_doctor(refresh):
    from .doctor import diagnose
    from .sidecar import base_image

    return diagnose(base_image())


@hookimpl
def prepare(spec, stage_dir):
    from functools import partial

    from bottle_core.addressing import agent_ip, bundle_ip, pick_subnet
    from bottle_core.images import resolved_names
    from bottle_core.plan import NetworkPlan, base_plan, new_slug

    from . import engine, network
    from .image_build import base_image_id
    from .sidecar import base_image

    client = engine.light_client()  # a run that claims a pooled bottle needs no SDK at all
    networks = client.api.networks()  # one look-up serves the subnet's choice and the refused networks
    subnet = pick_subnet(network.engine_subnets(networks) + network.host_routes())
    bottle = spec.manifest.bottles[spec.bottle_name]
    base, own = bottle.image or base_image(), base_image()  # the bundle's base is the user's, never the manifest's
    slug = new_slug(spec.agent, stage_dir)
    plan = base_plan(
        spec, backend="docker", stage_dir=Path(stage_dir), slug=slug,
        network=NetworkPlan(name=f"bottle-{slug}", subnet=str(subnet), bundle_ip=bundle_ip(subnet),
                            agent_ip=agent_ip(subnet),
                            outbound=network.outbound_name()),
        images=resolved_names(base, own, partial(base_image_id, client)),
    )
    network.refuse_networks(plan, networks)
    return plan


@hookimpl
def launch(plan):
    from .launch import DockerLaunch

    return DockerLaunch(plan)


@hookimpl
def launch_pooled(plan):
    from .pool import PooledLaunch

    return PooledLaunch(plan)


@hookimpl
def claim_pooled(plan, pooled):
    from .pool import ClaimedLaunch

    return ClaimedLaunch(plan, pooled)


@hookimpl
def build_images(force):
    from . import sidecar

    return sidecar.build_images(force=force)


@hookimpl
def list_bottles():
    from . import engine, labels

    rows = []
    for container in engine.client().api.containers(filters={"label": f"{labels.ROLE}=agent"}):
        tags = container.get("Labels") or {}
        rows.append({"slug": tags.get(labels.SLUG), "agent": tags.get(labels.AGENT), "backend": "docker",
                     "started": float(tags.get(labels.STARTED) or 0), "state": container.get("State"),
                     "owner_alive": labels.owner_alive(tags)})
    return sorted(rows, key=lambda row: row["started"])


@hookimpl
def stop_bottle(slug):
    from . import sidecar

    return sidecar.remove_bottle(slug)


@hookimpl
def exec_in_bundle(slug, argv):
    from . import sidecar

    return sidecar.exec_in_running_bundle(slug, argv)


@hookimpl
def collect_garbage():
    from . import sidecar

    return sidecar.collect_garbage()
