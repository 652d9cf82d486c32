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
from bottle_core.bundle.image.pooled import CLAIM_SIGNAL
from bottle_core.plan import Plan
from bottle_core.pool import PooledBottleGone, filter_holds
from bottle_core.sandbox import Launch
from bottle_core.signals import deferred

from . import bundle as container, labels
from .container import DockerBottle
from .launch import DockerLaunch
from .oneshot import run_one_shot
from .removal import remove_detached, remove_resources
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
    """One run's use of a pooled bottle: enter gives it the run's configuration, exit removes the bottle.

    A bottle no longer there (its agent or bundle not running, or removed while being claimed) raises
    :class:`~bottle_core.pool.PooledBottleGone`, and what is left of it is removed: the run starts cold.
    """

    def __init__(self, plan: Plan, pooled: Plan):
        super().__init__(plan)
        self.pooled = pooled
        self.client = engine_client()
        self.bundle: ContainerBundle | None = None
        self.containers: list[str] = []  # every container of the bottle, running or not: removed on exit
        self.remover = None

    def _find(self) -> dict[str, dict]:
        """The bottle's running containers by role, in one engine call; every container of it is noted."""
        found = self.client.api.containers(all=True, filters={"label": f"{labels.SLUG}={self.plan.slug}"})
        self.containers = [c["Id"] for c in found]
        running = {(c.get("Labels") or {}).get(labels.ROLE): c for c in found if c.get("State") == "running"}
        missing = [role for role in ("agent", "bundle") if role not in running]
        if missing:
            raise PooledBottleGone(f"pooled bottle {self.plan.slug} is gone (no running {' or '.join(missing)})")
        return running

    def start(self) -> None:
        from docker.errors import NotFound

        plan = self.plan
        secrets = contract.secret_table(plan)  # before the bottle is touched: a missing secret fails here
        running = self._find()
        agent, bundle = running["agent"], running["bundle"]
        self.bundle = ContainerBundle(self.client, bundle["Id"], plan.slug)
        try:
            if not filter_holds(self.pooled, plan):
                self._set_filter(bundle["Id"])
            self.client.api.put_archive(bundle["Id"], "/", container.files_tar(contract.claim_files(plan, secrets)))
            # The claim's signal: the bundle's entry point starts serving the run now (pooled.py).
            self.client.api.kill(bundle["Id"], signal=CLAIM_SIGNAL)
        except NotFound:
            raise PooledBottleGone(f"pooled bottle {plan.slug} is gone (removed while being claimed)") from None
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
        """File the bundle's last lines, then have the whole bottle removed by a process of its own (as a cold
        launch's teardown does), so the run has its exit status at once."""
        with deferred():
            if self.bundle is not None:
                self.bundle.finish_logs()
            self.remover = remove_detached(self.client, self.plan.slug, self.containers, [self.plan.network.name])
