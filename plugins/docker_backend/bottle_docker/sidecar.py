"""The bundle as a Docker container, for any backend: bring it up for a plan, find it again, remove it.

This is bottle-docker's one public module for other backends. A backend
whose bundle is a container (smol runs its microVM beside one) uses only
this: :class:`Sidecar` brings up the bottle network and the bundle with its
packet filter and hands back a :class:`ContainerBundle` (the core
:class:`~bottle_core.sandbox.Bundle` handle); :func:`find`,
:func:`remove_bottle` and :func:`collect_garbage` serve ``bottle pending``,
``stop`` and ``gc``; :func:`ensure_images` and :func:`build_images` give the
images it runs. The docker backend's own launch is built on the same class
and adds only its agent container.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from bottle_core import settings
from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan, mark_ended
from bottle_core.sandbox import Bundle, ExecResult


from . import bundle as container, engine, labels, network
from .image_build import ensure_images as _ensure_images, ensure_planned
from .removal import remove_labelled, remove_resources
from .streams import exec_in

BASE_IMAGE = "debian:bookworm-slim"
#: Re-exported for backends that plan a bottle network of their own making.
outbound_name = network.outbound_name
refuse_networks = network.refuse_networks
engine_subnets = network.engine_subnets
availability = engine.availability


def client():
    """The Docker SDK client every part of a bottle shares."""
    return engine.client()


def engine_networks() -> list[dict]:
    """The engine's networks (for picking a free subnet); empty when no engine answers."""
    if engine.availability() is not None:
        return []
    return client().api.networks()


def base_image() -> str:
    """The base of the agent and bundle images when the bottle names none."""
    return settings.current().base_image or BASE_IMAGE


def ensure_images(images: dict[str, str]) -> None:
    """Build the plan's images (by role) if the engine lacks them."""
    ensure_planned(client(), images)


def build_images(force: bool = False, base: str | None = None) -> list[str]:
    """``bottle image build``: the agent and bundle images of ``base``, by content hash."""
    return sorted(_ensure_images(client(), base or base_image(), force=force).values())


class ContainerBundle(Bundle):
    """A bundle running as a Docker container."""

    def __init__(self, client, container_id: str, slug: str):
        super().__init__(slug)
        self.client = client
        self.container_id = container_id

    def wait_ready(self) -> None:
        container.wait_for_bundle(self.client, self.container_id, self.slug)

    def ca_certificate(self) -> bytes:
        """Once the bundle says it is ready (its output followed, no engine call meanwhile), which it says only
        once its CA is written; a bundle's readiness comes just after its CA (its daemons' ports are bound from
        its start)."""
        self.ready()
        return container.bundle_ca(self.client, self.container_id)

    def exec(self, argv: Sequence[str], *, user: str = "bundle") -> ExecResult:
        return exec_in(self.client, self.container_id, list(argv), user=user, env=None, workdir="/", stdin=None)

    def output(self) -> Iterable[bytes]:
        """Its output, up to the line it says when told to stop (``contract.STOPPED_LINE``) or its end."""
        seen = b""
        for chunk in self.client.api.logs(self.container_id, stdout=True, stderr=True, stream=True, follow=True):
            seen = seen[-len(contract.STOPPED_LINE):] + chunk
            if contract.STOPPED_LINE in seen:
                yield chunk[: max(0, chunk.find(contract.STOPPED_LINE))]
                return
            yield chunk

    def stop(self) -> None:
        """Tell it to stop (SIGTERM), without waiting for the engine to see it gone: it says it stops first,
        which ends :meth:`output`; the launch's removal kills what is left."""
        try:
            self.client.api.kill(self.container_id, signal="SIGTERM")
        except Exception as exc:
            if not hasattr(exc, "status_code"):  # an engine's answer (SDK or raw): already stopped
                raise


class Sidecar:
    """One bottle's network and bundle container: :meth:`create`, :meth:`start`, and :meth:`remove` on every path.

    :param host_address: keep the host's address on the bottle network, for a
        backend whose agent reaches the bundle through a host process (smol).
    """

    def __init__(self, plan: Plan, *, host_address: bool = False, pooled: bool = False):
        self.plan = plan
        self.client = client()
        self.host_address = host_address
        #: For a warm pool: the bundle gets only its pooled files, and its output is filed by the run that claims it.
        self.pooled = pooled
        #: What exists so far, newest last: removed by :meth:`remove`, whatever happened.
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.bundle: ContainerBundle | None = None
        self._netfilter: str | None = None

    def create(self, secrets: list[dict]) -> Plan:
        """Create (not start) the network and the bundle; returns the Plan used.

        A subnet another bottle took since ``prepare`` gives a new Plan (saved
        again); the one handed over stays as it was.
        """
        from concurrent.futures import ThreadPoolExecutor

        from docker.errors import APIError, ImageNotFound

        def files(plan: Plan) -> dict[str, bytes]:
            return contract.pooled_files(plan) if self.pooled else contract.bundle_files(plan, secrets)

        planned = plan = self.plan
        try:
            if plan.network.outbound == network.SHARED_OUTBOUND:
                network.ensure_shared_outbound(self.client)
            with ThreadPoolExecutor(max_workers=1) as pool:
                # The bottle network and the bundle (on the outbound network, its files in) made at once.
                made = pool.submit(network.create_for, self.client, plan, labels.for_bottle(plan, "network"),
                                   host_address=self.host_address)
                try:
                    bundle_id = container.create_bundle(self.client, plan, plan.images["bundle"], files(plan),
                                                        self.containers)
                finally:
                    plan = self.plan = made.result()
                    self.networks.append(plan.network.name)
            if plan is not planned:  # moved to a free subnet meanwhile: the bundle's files say its new address
                container.put_files(self.client, bundle_id, files(plan))
            container.join_bottle_network(self.client, plan, bundle_id)
        except ImageNotFound as exc:
            raise BottleRuntimeError(f"image missing: {exc.explanation}", hint="run `bottle image build`") from None
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {plan.slug}'s bundle: "
                                     f"{exc.explanation or exc}") from None
        self.bundle = ContainerBundle(self.client, bundle_id, plan.slug)
        return plan

    def start(self) -> ContainerBundle:
        """Start the bundle and set its packet filter; its output is filed in the state dir."""
        self.start_bundle()
        self.set_filter()
        return self.bundle

    def start_bundle(self) -> ContainerBundle:
        """Start the bundle, its packet filter's one-shot created meanwhile (the filter is not set yet:
        :meth:`set_filter`, before anything is handed over); its output is filed in the state dir."""
        assert self.bundle is not None, "create() first"
        from concurrent.futures import ThreadPoolExecutor

        from docker.errors import APIError

        bundle_id, image = self.bundle.container_id, self.plan.images["bundle"]
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                # The one-shot names the bundle's namespace, which the engine needs only at the one-shot's start.
                netfilter = pool.submit(container.create_netfilter, self.client, self.plan, bundle_id, image,
                                        self.containers)
                self.client.api.start(bundle_id)
                self._netfilter = netfilter.result()
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {self.plan.slug}'s bundle: "
                                     f"{exc.explanation or exc}") from None
        if not self.pooled:
            self.bundle.file_logs(self.plan.state_dir)
        return self.bundle

    def set_filter(self) -> None:
        """Set the started bundle's packet filter (its one-shot run to its end); raises if it could not be set."""
        assert self._netfilter is not None, "start_bundle() first"
        from docker.errors import APIError

        try:
            container.set_filter(self.client, self._netfilter)
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to set bottle {self.plan.slug}'s packet filter: "
                                     f"{exc.explanation or exc}") from None

    def remove(self, *, also: Sequence[str] = ()) -> None:
        """File the bundle's last lines, then remove ``also`` (containers of the caller's) and everything made here."""
        if self.bundle is not None:
            self.bundle.finish_logs()
        remove_resources(self.client, [*reversed(also), *reversed(self.containers)], list(reversed(self.networks)))
        self.containers.clear()
        self.networks.clear()


def find(slug: str) -> ContainerBundle | None:
    """The running bundle of bottle ``slug``, or None."""
    docker = client()
    found = docker.api.containers(filters={"label": [f"{labels.SLUG}={slug}", f"{labels.ROLE}=bundle"]})
    return ContainerBundle(docker, found[0]["Id"], slug) if found else None


def exec_in_running_bundle(slug: str, argv: Sequence[str]) -> ExecResult:
    """``bottle pending``/``approve``/``deny``: run ``argv`` in bottle ``slug``'s bundle, as the bundle's user.

    Raises UsageError when no such bottle runs (or it ended meanwhile).
    """
    from docker.errors import APIError

    from bottle_core.errors import UsageError

    bundle = find(slug)
    if bundle is None:
        raise UsageError(f"no running bottle {slug!r}", hint="see `bottle ls`")
    try:  # as the bundle's own user: its control socket is that user's alone
        return bundle.exec(argv, user="bundle")
    except APIError as exc:  # it ended between the look-up and the exec
        raise UsageError(f"bottle {slug!r} is no longer running ({exc.explanation or exc})") from None


def remove_bottle(slug: str) -> bool:
    """Remove every container and network labelled with ``slug``, its state dir marked ended (its logs stay
    for the retention); False when there were none."""
    containers, networks = remove_labelled(client(), slug)
    _mark_ended(containers)
    return bool(containers or networks)


def collect_garbage() -> list[str]:
    """Remove the containers and networks of bottles whose ``bottle`` process is gone; returns what went."""
    docker = client()
    everything = docker.api.containers(all=True, filters={"label": labels.SLUG})
    dead = [c for c in everything if not labels.owner_alive(c.get("Labels") or {})]
    live_slugs = {(c.get("Labels") or {}).get(labels.SLUG) for c in everything} - {
        (c.get("Labels") or {}).get(labels.SLUG) for c in dead}
    networks = [n for n in docker.api.networks(filters={"label": labels.SLUG})
                if not labels.owner_alive(n.get("Labels") or {})
                and (n.get("Labels") or {}).get(labels.SLUG) not in live_slugs]
    removed = remove_resources(docker, [c["Id"] for c in dead], [n["Name"] for n in networks])
    _mark_ended(dead)
    return removed


def _mark_ended(containers) -> None:
    """Mark the state dirs of removed bottles ended: their logs are kept for the retention, then `bottle gc` goes."""
    for container_info in containers:
        tags = container_info.get("Labels") or {}
        state_dir = tags.get(labels.STATE_DIR)
        if state_dir and Path(state_dir).name == tags.get(labels.SLUG):
            mark_ended(state_dir)
