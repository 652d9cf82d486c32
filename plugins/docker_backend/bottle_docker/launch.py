"""Bringing a planned bottle up, and taking all of it down again.

Order: secrets read and the Plan's images ensured (built when missing) (nothing exists yet if either fails);
the bottle network (and the shared outbound network, the first time); the
bundle (pinned IP on the bottle network, plus the outbound one), started first; the agent
(pinned IP, bottle network only) and the one-shot container that deletes its
default route; the bundle's packet filter, set by another one-shot container
in the bundle's network namespace before the agent is handed over. Teardown
removes what was created, whatever happened; and before anything is created a
reaper (:mod:`.reaper`) is started that removes it all should this process
die without its teardown.

Each part lives in its own module: :mod:`.network` (the networks),
:mod:`.bundle` (the bundle's container), :mod:`.agent` (the agent's
container), :mod:`.removal` (removing resources, shared with stop and gc).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.signals import deferred

from . import agent, bundle, engine, labels, network, reaper
from .container import DockerBottle
from .image_build import ensure_planned
from .removal import remove_resources


class DockerLaunch(AbstractContextManager):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.client = engine.client()
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.bottle: DockerBottle | None = None
        self.log_follower: threading.Thread | None = None
        self.switch: reaper.Switch | None = None

    def __enter__(self) -> DockerBottle:
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

        plan, client = self.plan, self.client
        secrets = contract.secret_table(plan)  # before anything starts: a missing secret leaves nothing behind
        ensure_planned(client, plan.images)
        self.switch = reaper.start(plan.slug, plan.state_dir)  # the bottle ends with this process, however it ends
        images = plan.images
        try:
            if plan.network.outbound == network.SHARED_OUTBOUND:
                network.ensure_shared_outbound(client)
            # A subnet taken since prepare gives a new Plan (saved again); the one handed over stays as it was.
            plan = self.plan = network.create_for(client, plan, labels.for_bottle(plan, "network"))
            self.networks.append(plan.network.name)
            with ThreadPoolExecutor(max_workers=1) as pool:
                bundle_id = bundle.create_bundle(client, plan, images["bundle"], contract.bundle_files(plan, secrets),
                                                 self.containers)
                netfilter = bundle.create_netfilter(client, plan, bundle_id, images["bundle"], self.containers)
                # The proxy's start-up is the longest pole (~0.4 s to start a container here, then
                # the proxy's own start): set it going first, with its packet filter, and do the
                # agent's side meanwhile.
                bundle_started = pool.submit(bundle.start_with_filter, client, bundle_id, netfilter)
                agent_id = agent.create_agent(client, plan, images["agent"], self.containers)
                fixer = agent.create_route_fixer(client, plan, agent_id, images["bundle"], self.containers)
                client.api.start(agent_id)
                agent.drop_default_route(client, fixer)
                bundle_started.result()
                self.log_follower = bundle.follow_logs(client, plan, bundle_id)
        except ImageNotFound as exc:
            raise BottleRuntimeError(f"image missing: {exc.explanation}", hint="run `bottle image build`") from None
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {plan.slug}: {exc.explanation or exc}") from None
        self.bottle = DockerBottle(plan, client, agent_id=agent_id, bundle_id=bundle_id)

    def teardown(self) -> None:
        """Remove every container and network this launch created, newest first; never raises."""
        with deferred():
            if self.log_follower is not None and self.bottle is not None:
                bundle.drain_logs(self.client, self.bottle.bundle_id, self.log_follower)
                self.log_follower = None
            remove_resources(self.client, list(reversed(self.containers)), list(reversed(self.networks)))
            if self.switch is not None:
                self.switch.release()
                self.switch = None
        self.containers.clear()
        self.networks.clear()

