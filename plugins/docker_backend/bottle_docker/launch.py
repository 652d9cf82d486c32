"""Bringing a planned bottle up, and taking all of it down again.

Order: secrets read and the Plan's images ensured (built when missing) (nothing exists yet if either fails);
the bottle network and the bundle (:class:`.sidecar.Sidecar`, which other backends share); the bundle
started (its packet filter's one-shot created meanwhile), while the agent (pinned IP, bottle network only)
and the one-shot that will delete its default route are created and the agent started. The two one-shots
then run in the background (:class:`.seal.Seal`) while the caller reads the bundle's CA and places the
agent's files; the bottle runs nothing, in the agent or the bundle, until both have ended well.
Teardown files the bundle's last lines, then has what was created removed, whatever happened,
by a process of its own (:func:`.removal.remove_detached`), so the caller has its exit status at once.
Should this process die without its teardown, core's reaper, :mod:`bottle_core.reaper`, has
``stop_bottle`` remove it all; should the removal be cut short, ``bottle gc`` finishes it.

Each part lives in its own module: :mod:`.sidecar` (the network and the bundle),
:mod:`.agent` (the agent's container), :mod:`.removal` (removing resources, shared with stop and gc).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Launch
from bottle_core.signals import deferred

from . import agent, sidecar
from .container import DockerBottle
from .removal import remove_detached
from .seal import Seal


class DockerLaunch(Launch):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan, *, pooled: bool = False):
        super().__init__(plan)
        self.pooled = pooled  # for a warm pool: no secret read or given (see bottle_docker.pool)
        self.sidecar: sidecar.Sidecar | None = None
        self.containers: list[str] = []  # the agent's side; the sidecar keeps its own
        self.remover = None  # the process removing it all, once torn down

    def start(self) -> None:
        from docker.errors import APIError, ImageNotFound

        # Before anything starts: a missing secret leaves nothing behind.
        secrets = [] if self.pooled else contract.secret_table(self.plan)
        sidecar.ensure_images(self.plan.images)
        self.sidecar = sidecar.Sidecar(self.plan, pooled=self.pooled)
        plan = self.plan = self.sidecar.create(secrets)
        client = self.sidecar.client
        seal = Seal(plan.slug)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                # The bundle's start is the longest pole: set it going first, and do the agent's side meanwhile.
                bundle_started = pool.submit(self.sidecar.start_bundle)
                agent_id = agent.create_agent(client, plan, plan.images["agent"], self.containers, pooled=self.pooled)
                fixer = agent.create_route_fixer(client, plan, agent_id, plan.images["bundle"], self.containers)
                client.api.start(agent_id)
                seal.add(lambda: agent.drop_default_route(client, fixer), "remove the agent's default route")
                bundle = bundle_started.result()
            # Both one-shots run while the caller reads the CA and places the agent's files; the bottle waits
            # for them before anything runs in it (DockerBottle), a pooled one at once (its side execs now).
            seal.add(self.sidecar.set_filter, "set the bundle's packet filter")
            if self.pooled:
                seal.wait()
                agent.start_pooled_side(client, plan, agent_id)
        except ImageNotFound as exc:
            raise BottleRuntimeError(f"image missing: {exc.explanation}", hint="run `bottle image build`") from None
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {plan.slug}: {exc.explanation or exc}") from None
        self.bottle = DockerBottle(plan, client, agent_id=agent_id, bundle=bundle, seal=seal)

    def teardown(self) -> None:
        """File the bundle's last lines, then have every container and network this launch created removed,
        newest first, without waiting for the engine; never raises."""
        with deferred():
            side = self.sidecar
            if side is not None:
                if side.bundle is not None:
                    side.bundle.finish_logs()
                containers = [*reversed(self.containers), *reversed(side.containers)]
                if containers or side.networks:
                    self.remover = remove_detached(side.client, self.plan.slug, containers,
                                                   list(reversed(side.networks)))
                side.containers.clear()
                side.networks.clear()
        self.containers.clear()
