"""The smol backend's hook implementations (entry point ``bottle.backends: smol``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability, which only runs ``smolvm --version`` and
looks at ``/dev/kvm`` and ``/sys/module``.

The bundle is a container of the docker backend's making, so the hooks
about it (its CA, the images) are the docker backend's own functions.
"""

from __future__ import annotations

from bottle_core import hookimpl


@hookimpl
def backend_availability():
    from .doctor import availability

    return availability()


@hookimpl
def backend_doctor(refresh):
    from .doctor import diagnose

    return diagnose(refresh=refresh)


@hookimpl
def prepare(spec, stage_dir):
    from .prepare import prepare_plan

    return prepare_plan(spec, stage_dir)


@hookimpl
def launch(plan):
    from .launch import launch_bottle

    return launch_bottle(plan)


@hookimpl
def provision_ca(plan, bottle):
    """The docker backend's own: the CA comes from the same bundle container and goes in through the handle."""
    from bottle_docker.backend import provision_ca as install_bundle_ca

    install_bundle_ca(plan=plan, bottle=bottle)


@hookimpl
def build_images(force):
    """The docker backend's: the bundle runs there, and the microVM boots the agent image exported from there."""
    from bottle_docker.backend import build_images as build_in_docker

    return build_in_docker(force=force)


@hookimpl
def list_bottles():
    from .inventory import list_machines

    return list_machines()


@hookimpl
def stop_bottle(slug):
    from .inventory import stop_slug

    return stop_slug(slug)


@hookimpl
def collect_garbage():
    from .inventory import collect

    return collect()
