"""The docker backend's hook implementations (entry point ``bottle.backends: docker``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability.
"""

from __future__ import annotations

import os
from pathlib import Path

from bottle_core import hookimpl, settings

BASE_IMAGE = "debian:bookworm-slim"


@hookimpl
def backend_availability():
    from .engine import availability

    return availability()


@hookimpl
def backend_doctor(refresh):
    from .doctor import diagnose

    return diagnose(settings.current().base_image or BASE_IMAGE)


@hookimpl
def prepare(spec, stage_dir):
    from bottle_core.addressing import agent_ip, bundle_ip, pick_subnet
    from bottle_core.images import image_names
    from bottle_core.plan import NetworkPlan, base_plan, new_slug

    from . import engine, network
    from .image_build import base_image_id

    client = engine.client()
    subnet = pick_subnet(network.used_subnets(client))
    bottle = spec.manifest.bottles[spec.bottle_name]
    config = settings.current()
    base = bottle.image or config.base_image or BASE_IMAGE
    slug = new_slug(spec.agent)
    plan = base_plan(
        spec, backend="docker", stage_dir=Path(stage_dir), slug=slug,
        network=NetworkPlan(name=f"bottle-{slug}", subnet=str(subnet), bundle_ip=bundle_ip(subnet),
                            agent_ip=agent_ip(subnet),
                            outbound=config.docker_outbound_network or network.SHARED_OUTBOUND),
        images=image_names(base, base_image_id(client, base)),
    )
    network.refuse_engine_and_host(client, plan)
    return plan


@hookimpl
def launch(plan):
    from .launch import DockerLaunch

    return DockerLaunch(plan)


@hookimpl
def provision_ca(plan, bottle):
    """Install the bundle's CA into the agent's trust store (the key stays in the bundle)."""
    from .bundle import bundle_ca

    folder, name = os.path.split(plan.guest.ca_cert)
    bottle.write_files(folder, {name: bundle_ca(bottle.client, bottle.bundle_id, plan.slug)}, mode=0o644, owner=0)
    # What update-ca-certificates does for one added certificate: append it to the
    # bundle file and link it by subject hash. The script itself re-walks all ~140
    # system certificates (about 1 s here); the certificate sits in the Debian
    # place, so any later update-ca-certificates run keeps it.
    bottle.check(["sh", "-ec", f'cert="{plan.guest.ca_cert}"; cat "$cert" >> "{plan.guest.ca_bundle}"; '
                  f'ln -sf "$cert" "/etc/ssl/certs/$(openssl x509 -hash -noout -in "$cert").0"'], user="0")


@hookimpl
def build_images(force):
    from . import engine
    from .image_build import ensure_images

    base = settings.current().base_image or BASE_IMAGE
    return sorted(ensure_images(engine.client(), base, force=force).values())


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
    from . import engine, labels
    from .removal import remove_resources

    client = engine.client()
    containers = client.api.containers(all=True, filters={"label": f"{labels.SLUG}={slug}"})
    networks = client.api.networks(filters={"label": f"{labels.SLUG}={slug}"})
    if not containers and not networks:
        return False
    remove_resources(client, [c["Id"] for c in containers], [n["Name"] for n in networks])
    _mark_ended(containers)
    return True


@hookimpl
def exec_in_bundle(slug, argv):
    from bottle_core.errors import UsageError

    from . import engine, labels
    from .container import exec_in

    client = engine.client()
    found = client.api.containers(filters={"label": [f"{labels.SLUG}={slug}", f"{labels.ROLE}=bundle"]})
    if not found:
        raise UsageError(f"no running bottle {slug!r}", hint="see `bottle ls`")
    from docker.errors import APIError

    # As the bundle's own user: its control socket is that user's alone.
    try:
        return exec_in(client, found[0]["Id"], list(argv), user="bundle", env=None, workdir="/", stdin=None)
    except APIError as exc:  # it ended between the look-up and the exec
        raise UsageError(f"bottle {slug!r} is no longer running ({exc.explanation or exc})") from None


@hookimpl
def collect_garbage():
    from . import engine, labels
    from .removal import remove_resources

    client = engine.client()
    everything = client.api.containers(all=True, filters={"label": labels.SLUG})
    dead = [c for c in everything if not labels.owner_alive(c.get("Labels") or {})]
    live_slugs = {(c.get("Labels") or {}).get(labels.SLUG) for c in everything} - {
        (c.get("Labels") or {}).get(labels.SLUG) for c in dead}
    networks = [n for n in client.api.networks(filters={"label": labels.SLUG})
                if not labels.owner_alive(n.get("Labels") or {})
                and (n.get("Labels") or {}).get(labels.SLUG) not in live_slugs]
    removed = remove_resources(client, [c["Id"] for c in dead], [n["Name"] for n in networks])
    _mark_ended(dead)
    return removed


def _mark_ended(containers) -> None:
    """Mark the state dirs of removed bottles ended: their logs are kept for the retention, then `bottle gc` goes."""
    from . import labels
    from .reaper import mark_ended

    for container in containers:
        state_dir = (container.get("Labels") or {}).get(labels.STATE_DIR)
        if state_dir and Path(state_dir).name == (container.get("Labels") or {}).get(labels.SLUG):
            mark_ended(state_dir)
