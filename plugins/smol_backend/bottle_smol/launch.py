"""``launch`` for the smol backend: the bundle container, then the agent microVM, removed in reverse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan

from .binary import find
from .engine import Engine
from .machine import running_machine
from .sandbox import SmolBottle


def agent_image_stream(plan: Plan) -> Iterable[bytes]:
    """The agent image as a ``docker save`` stream, for ``machine create --image -``."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    name = plan.images["agent"]
    try:
        return docker.from_env(timeout=300).images.get(name).save(named=True)
    except ImageNotFound:
        raise BottleRuntimeError(f"agent image {name} is not in the Docker engine",
                                 hint="run `bottle image build`") from None
    except DockerException as exc:
        raise BottleRuntimeError(f"cannot read agent image {name} from the Docker engine: {exc}") from None


@contextmanager
def bundle(plan: Plan) -> Iterator[None]:
    """The bundle (proxy, egress, git gate, supervise) as a container on a host-routable bridge.

    Not built yet for this backend. Starting the microVM without it would give
    an agent whose only allowed peer does not exist, so launch stops here.
    """
    raise BottleRuntimeError(
        "the smol backend cannot start a bottle yet: its bundle (the proxy, egress, git gate and supervise "
        f"container at {plan.network.bundle_ip} on a host-routable bridge) is not implemented",
        hint="use the docker backend for now: --backend docker")
    yield  # pragma: no cover


@contextmanager
def launch_bottle(plan: Plan) -> Iterator[SmolBottle]:
    """Bundle first (the microVM's only peer), then the microVM; both removed on the way out."""
    engine = Engine(find())
    with bundle(plan), running_machine(engine, plan, agent_image_stream(plan)) as machine:
        bottle = SmolBottle(plan, engine, machine)
        try:
            yield bottle
        finally:
            bottle.close()
