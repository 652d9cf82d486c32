"""``launch`` for the smol backend: the bundle container, then the agent microVM; all removed in reverse.

The bundle is the same container the docker backend runs, made by the same
code (:mod:`bottle_docker.bundle`, from the contract in
:mod:`bottle_core.bundle.contract`): only its network differs. smolvm opens
the microVM's permitted connections from the host, so the bundle's bridge
keeps the host's address (it is still internal: nothing on it is routed
elsewhere), and the microVM's egress is restricted to ``<bundle-ip>/32``.

Order: secrets read and images ensured (nothing exists yet if either fails);
the bridge; the bundle, started, and its packet filter set (the docker
backend's one-shot in the bundle's namespace); the agent image exported (cached by image
ID); the microVM created, started and confirmed running. Teardown: the
microVM stopped and deleted, the bundle's last log lines filed, the bundle
and bridge removed -- on every exit path.
"""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.signals import deferred

from .binary import find
from .engine import Engine
from .machine import running_machine
from .sandbox import SmolBottle

IMAGE_CACHE = "smol-images"


def image_cache() -> Path:
    """Where exported agent images are kept (``$XDG_CACHE_HOME/bottle/smol-images``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "bottle" / IMAGE_CACHE


def exported_image(client, name: str, cache: Path | None = None) -> Path:
    """The image ``name`` as a ``docker save`` archive, made once per image ID (an older export is removed)."""
    from docker.errors import DockerException, ImageNotFound

    cache = cache or image_cache()
    try:
        image = client.images.get(name)
    except ImageNotFound:
        raise BottleRuntimeError(f"agent image {name} is not in the Docker engine",
                                 hint="run `bottle image build`") from None
    path = cache / f"{image.id.split(':')[-1][:32]}.tar"
    if path.is_file():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")
    try:
        with open(partial, "wb") as out:
            for chunk in image.save(named=True):
                out.write(chunk)
        os.replace(partial, path)
    except (DockerException, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BottleRuntimeError(f"cannot export agent image {name} for smolvm: {exc}") from None
    for old in cache.glob("*.tar"):  # one export is enough; older builds are pruned from the engine too
        if old != path:
            old.unlink(missing_ok=True)
    return path


class SmolLaunch(AbstractContextManager):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan):
        from bottle_docker import engine as docker_engine

        self.plan = plan
        self.engine = Engine(find())
        self.client = docker_engine.client()
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.machine = ExitStack()
        self.bottle: SmolBottle | None = None
        self.bundle_id: str | None = None
        self.log_follower: threading.Thread | None = None

    def __enter__(self) -> SmolBottle:
        try:
            self._start()
        except BaseException:
            self.teardown()
            raise
        return self.bottle  # type: ignore[return-value]

    def __exit__(self, *exc_info) -> None:
        self.teardown()

    def _start(self) -> None:
        from docker.errors import APIError, ImageNotFound

        from bottle_docker import bundle, labels, network
        from bottle_docker.image_build import ensure_planned

        plan, client = self.plan, self.client
        self.engine.check_version()
        secrets = contract.secret_table(plan)  # before anything starts: a missing secret leaves nothing behind
        ensure_planned(client, plan.images)
        image = exported_image(client, plan.images["agent"])
        try:
            if plan.network.outbound == network.SHARED_OUTBOUND:
                network.ensure_shared_outbound(client)
            plan = self.plan = network.create_for(client, plan, labels.for_bottle(plan, "network"),
                                                  host_address=True)
            self.networks.append(plan.network.name)
            self.bundle_id = bundle.create_bundle(client, plan, plan.images["bundle"],
                                                  contract.bundle_files(plan, secrets), self.containers)
            netfilter = bundle.create_netfilter(client, plan, self.bundle_id, plan.images["bundle"], self.containers)
            bundle.start_with_filter(client, self.bundle_id, netfilter)
            self.log_follower = bundle.follow_logs(client, plan, self.bundle_id)
        except ImageNotFound as exc:
            raise BottleRuntimeError(f"image missing: {exc.explanation}", hint="run `bottle image build`") from None
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {plan.slug}'s bundle: "
                                     f"{exc.explanation or exc}") from None
        name = self.machine.enter_context(running_machine(self.engine, plan, None, image_ref=str(image)))
        self.bottle = SmolBottle(plan, self.engine, name, client=client, bundle_id=self.bundle_id)

    def teardown(self) -> None:
        """Remove the microVM, then the bundle and its bridge; never raises."""
        from bottle_docker import bundle
        from bottle_docker.removal import remove_resources

        with deferred():
            try:
                self.machine.close()  # stops and deletes the microVM (and says so if it cannot)
            except Exception as exc:  # noqa: BLE001 - the containers must still go
                import sys

                print(f"bottle: {exc}; run `bottle --backend smol gc`", file=sys.stderr)
            if self.log_follower is not None and self.bundle_id is not None:
                bundle.drain_logs(self.client, self.bundle_id, self.log_follower)
                self.log_follower = None
            remove_resources(self.client, list(reversed(self.containers)), list(reversed(self.networks)))
        self.containers.clear()
        self.networks.clear()


def launch_bottle(plan: Plan) -> SmolLaunch:
    """The smol bottle's launch context (``with launch_bottle(plan) as bottle: ...``)."""
    return SmolLaunch(plan)
