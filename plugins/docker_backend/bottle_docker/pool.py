"""A warm pool on Docker: a bottle launched ahead of its run, and a run taking one over.

:class:`PooledLaunch` is the docker launch with its bundle given only the
pooled files (see :mod:`bottle_core.bundle.contract`): its packet filter is
set, its proxy started and waiting, the agent up with its default route
gone. :class:`ClaimedLaunch` hands such a bottle to one run: the run's
bundle files go in (its packet filter set again first when the run's rules
differ from the pooled ones), the bundle starts serving, its logs are filed
in the state dir, and on exit the whole bottle goes, never to be used again.
"""

from __future__ import annotations

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.pool import filter_holds
from bottle_core.sandbox import Launch
from bottle_core.signals import deferred

from . import bundle as container, labels
from .container import DockerBottle
from .launch import DockerLaunch
from .oneshot import run_one_shot
from .removal import remove_labelled, remove_resources
from .sidecar import ContainerBundle, client as engine_client


class PooledBundle(ContainerBundle):
    """A pooled bundle: ready once it waits for its run (it says ``bottle-bundle: pooled``)."""

    def wait_ready(self) -> None:
        api = self.client.api
        container._poll(self.client, self.container_id, self.slug,
                        lambda: contract.POOLED_LINE in api.logs(self.container_id, stdout=True, stderr=True),
                        "start for the pool", contract.READY_TIMEOUT)


class PooledLaunch(DockerLaunch):
    """The docker launch for a pool: nothing secret read or given, the bundle waiting for a run."""

    def __init__(self, plan: Plan):
        super().__init__(plan, pooled=True)

    def start(self) -> None:
        super().start()
        assert self.bottle is not None
        bundle = self.bottle.bundle
        self.bottle.bundle = PooledBundle(bundle.client, bundle.container_id, bundle.slug)


class ClaimedLaunch(Launch):
    """One run's use of a pooled bottle: enter gives it the run's configuration, exit removes the bottle."""

    def __init__(self, plan: Plan, pooled: Plan):
        super().__init__(plan)
        self.pooled = pooled
        self.client = engine_client()
        self.bundle: ContainerBundle | None = None

    def _find(self, role: str) -> dict:
        found = self.client.api.containers(filters={"label": [f"{labels.SLUG}={self.plan.slug}",
                                                              f"{labels.ROLE}={role}"]})
        if not found:
            raise BottleRuntimeError(f"pooled bottle {self.plan.slug} has no running {role}")
        return found[0]

    def start(self) -> None:
        plan = self.plan
        secrets = contract.secret_table(plan)  # before the bottle is touched: a missing secret fails here
        agent, bundle = self._find("agent"), self._find("bundle")
        self.bundle = ContainerBundle(self.client, bundle["Id"], plan.slug)
        if not filter_holds(self.pooled, plan):
            self._set_filter(bundle["Id"])
        self.client.api.put_archive(bundle["Id"], "/", container.files_tar(contract.claim_files(plan, secrets)))
        self.bundle.file_logs(plan.state_dir)
        self.bottle = DockerBottle(plan, self.client, agent_id=agent["Id"], bundle=self.bundle)

    def _set_filter(self, bundle_id: str) -> None:
        """The packet filter again, from the run's configuration, before the bundle serves anything."""
        made: list[str] = []
        remove_resources(self.client, [f"bottle-{self.plan.slug}-netfilter"], [])  # the pooled one, if still there
        try:
            netfilter = container.create_netfilter(self.client, self.plan, bundle_id, self.plan.images["bundle"], made)
            run_one_shot(self.client, netfilter, "set the bundle's packet filter for this run")
        finally:
            remove_resources(self.client, made, [])

    def teardown(self) -> None:
        with deferred():
            if self.bundle is not None:
                self.bundle.finish_logs()
            remove_labelled(self.client, self.plan.slug)

