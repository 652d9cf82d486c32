"""The k8s backend's hook implementations (entry point ``bottle.backends: k8s``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability. The images are bottle-docker's (built
by the local Docker engine, then imported into the node or pushed to a
registry); everything else goes through the Kubernetes API.
"""

from __future__ import annotations

from bottle_core import hookimpl


@hookimpl
def backend_availability():
    from .cluster import availability

    return availability()


@hookimpl
def backend_settings():
    from .settings import ALL

    return ALL


@hookimpl
def backend_doctor(refresh):
    from .doctor import diagnose

    return diagnose()


@hookimpl
def prepare(spec, stage_dir):
    from .prepare import prepare_plan

    return prepare_plan(spec, stage_dir)


@hookimpl
def launch(plan):
    from .launch import K8sLaunch

    return K8sLaunch(plan)


@hookimpl
def build_images(force):
    """The local Docker engine builds them; a launch takes them to the cluster."""
    from bottle_docker import sidecar

    return sidecar.build_images(force=force)


@hookimpl
def list_bottles():
    from .inventory import list_bottles as rows

    return rows()


@hookimpl
def stop_bottle(slug):
    from .inventory import stop_bottle as stop

    return stop(slug)


@hookimpl
def exec_in_bundle(slug, argv):
    from .inventory import exec_in_bundle as run

    return run(slug, argv)


@hookimpl
def bring_home(slug):
    from .inventory import bring_home as run

    return run(slug)


@hookimpl
def collect_garbage():
    from .inventory import collect_garbage as collect

    return collect()
