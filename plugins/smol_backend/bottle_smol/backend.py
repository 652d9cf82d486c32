"""The smol backend's hook implementations (entry point ``bottle.backends: smol``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability, which only runs ``smolvm --version`` and
looks at ``/dev/kvm`` and ``/sys/module``.

The bundle is a container made by bottle-docker's public sidecar module
(:mod:`bottle_docker.sidecar`): the images, the bundle's removal and the
supervisor's control client go through it; the CA is core's own provisioning.
"""

from __future__ import annotations

from bottle_core import hookimpl


@hookimpl
def backend_availability():
    from .doctor import availability

    return availability()


@hookimpl
def backend_settings():
    from .binary import BINARY_SETTING, STATE_DIR_SETTING

    return [BINARY_SETTING, STATE_DIR_SETTING]


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


def _sidecar():
    """bottle-docker's public sidecar module, imported when a hook needs it (not when `bottle backends` loads this)."""
    from bottle_docker import sidecar

    return sidecar


@hookimpl
def build_images(force):
    """The Docker engine's images: the bundle runs there, and the microVM boots the agent image exported from there."""
    return _sidecar().build_images(force=force)


@hookimpl
def exec_in_bundle(slug, argv):
    """The bundle is a container beside the microVM: the supervisor's control client runs there."""
    return _sidecar().exec_in_running_bundle(slug, argv)


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
