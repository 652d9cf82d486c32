"""``launch`` for the smol backend: the bundle container, then the agent microVM; all removed in reverse.

The bundle is the same container the docker backend runs, made by the same
code (:mod:`bottle_docker.sidecar`, from the contract in
:mod:`bottle_core.bundle.contract`): only its network differs. smolvm opens
the microVM's permitted connections from the host, so the bundle's bridge
keeps the host's address (it is still internal: nothing on it is routed
elsewhere), and the microVM's egress is restricted to ``<bundle-ip>/32``.

Order: secrets read and images ensured (nothing exists yet if either fails);
the agent image exported (cached by image ID); the bridge; the bundle, started, and its
packet filter set (the docker backend's one-shot in the bundle's namespace); the microVM created, started and confirmed running. Teardown: the
microVM stopped and deleted, the bundle's last log lines filed, the bundle
and bridge removed -- on every exit path.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Launch
from bottle_core.signals import deferred
from bottle_docker import sidecar

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


class SmolLaunch(Launch):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self.engine = Engine(find())
        self.sidecar: sidecar.Sidecar | None = None
        self.machine = ExitStack()

    def start(self) -> None:
        recorded = self.plan.backend_options["smolvm"]
        if self.engine.binary.path != recorded:
            raise BottleRuntimeError(f"the smolvm binary is now {self.engine.binary.path}, not {recorded} as planned",
                                     hint="start the bottle again: a new plan records the new binary")
        self.engine.check_version()
        secrets = contract.secret_table(self.plan)  # before anything starts: a missing secret leaves nothing behind
        sidecar.ensure_images(self.plan.images)
        image = exported_image(sidecar.client(), self.plan.images["agent"])
        self.sidecar = sidecar.Sidecar(self.plan, host_address=True)
        plan = self.plan = self.sidecar.create(secrets)
        bundle = self.sidecar.start()
        name = self.machine.enter_context(running_machine(self.engine, plan, None, image_ref=str(image)))
        self.bottle = SmolBottle(plan, self.engine, name, bundle=bundle)

    def teardown(self) -> None:
        """Remove the microVM, then the bundle and its bridge; never raises."""
        with deferred():
            try:
                self.machine.close()  # stops and deletes the microVM (and says so if it cannot)
            except Exception as exc:  # noqa: BLE001 - the containers must still go
                import sys

                print(f"bottle: {exc}; run `bottle --backend smol gc`", file=sys.stderr)
            if self.sidecar is not None:
                self.sidecar.remove()


def launch_bottle(plan: Plan) -> SmolLaunch:
    """The smol bottle's launch context (``with launch_bottle(plan) as bottle: ...``)."""
    return SmolLaunch(plan)
