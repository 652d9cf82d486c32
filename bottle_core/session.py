"""The lifecycle of one bottle: prepare, launch, provision, workspace, then the caller's work.

This is the only place that strings the hooks together; the CLI and tests
both go through it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import reaper
from .hookspecs import PROVISION_ORDER
from .plan import Plan, mark_ended, stage, state_root
from .plugins import Plugins, select_backend
from .provision import ProvisionRound, copy_workspace
from .sandbox import Bottle
from .spec import BottleSpec


def plugins_for(spec: BottleSpec, backend_option: str | None = None) -> Plugins:
    """A manager holding bottle's defaults, the selected backend and every plugin."""
    plugins = Plugins()
    plugins.load_core()
    for record in plugins.load_plugins():
        dist = f" (from {record.distribution})" if record.distribution else ""
        print(f"bottle: warning: plugin {record.name!r}{dist} skipped: {record.error} "
              f"(uninstall it, or choose plugins with BOTTLE_PLUGINS)", file=sys.stderr)
    plugins.load_backend(select_backend(backend_option, spec.backend_field))
    return plugins


def plan_for(plugins: Plugins, spec: BottleSpec, stage_dir: Path | None = None) -> Plan:
    """Ask the backend for the Plan; nothing is written (``bottle plan``)."""
    return plugins.call_first("prepare", spec=spec, stage_dir=stage_dir or state_root())


def prepare(plugins: Plugins, spec: BottleSpec, stage_dir: Path | None = None) -> Plan:
    """The Plan, staged: its state dir made, the prompt file and plan.json written."""
    plan = plan_for(plugins, spec, stage_dir)
    stage(plan, spec.manifest.prompt_text(spec.agent))
    return plan


@contextmanager
def running(plugins: Plugins, plan: Plan) -> Iterator[Bottle]:
    """Launch the planned bottle (or claim a warm one from its pool), provision it, copy the workspace in;
    remove it all afterwards. The handle's ``plan`` is the one used (a claimed bottle's slug and state dir).

    A reaper watches this process meanwhile: should it die without its teardown, the bottle goes anyway.
    """
    with _launched(plugins, plan) as (bottle, done):
        launched = bottle.plan  # the plan given, or a new one the backend saved (see the launch hookspec)
        # The workspace first, so every provision hook sees it (provision_git adds its remotes).
        # The copy and bottle's own and the backend's provisioning overlap the bundle's start-up (they
        # need no network); third-party hooks (after bottle.ready(), see plugins.ReadyBarrier) and the
        # caller get a bottle whose way out is up.
        if launched.copy_cwd:  # streamed in on its own: a workspace can be large
            copy_workspace(launched, bottle)
        # The hooks' contributions applied in one round, where the backend's bottle allows it.
        provisioning = ProvisionRound(bottle) if bottle.provision_in_one_round else bottle
        for hook in PROVISION_ORDER:
            if hook not in done:
                plugins.call_each(hook, plan=launched, bottle=provisioning)
        provisioning.ready()
        if done:  # a bottle claimed from a warm pool: its keeper may launch the next one now
            from .pool import started

            started(launched.state_dir)
        yield bottle


@contextmanager
def _launched(plugins: Plugins, plan: Plan) -> Iterator[tuple[Bottle, tuple[str, ...]]]:
    """The bottle up, and the provision hooks already done in it: a claimed pooled one, else a cold one.

    A claimed bottle found gone starts the run cold, with a one-line note (see ``pool.PooledBottleGone``).
    """
    from . import pool

    claim = pool.claim(plan)
    if claim is not None:
        switch = reaper.start(plan.backend, claim.plan.slug, claim.plan.state_dir)
        try:
            reaper.hand_over(claim.plan.state_dir)  # this run owns the pooled bottle now, its keeper no longer
            launch = plugins.call_first("claim_pooled", plan=claim.plan, pooled=claim.pooled)
            try:
                bottle = launch.__enter__()  # a start that fails has torn down what it found already
            except pool.PooledBottleGone as gone:
                print(f"bottle: {gone.message}; starting cold", file=sys.stderr)
            else:
                with ExitStack() as stack:
                    stack.push(launch)
                    pool.settled(claim)
                    yield bottle, ("provision_ca",)  # the pooled bottle trusts its bundle's CA already
                return
        finally:
            mark_ended(claim.plan.state_dir)  # its plan and logs stay for `bottle logs` until `bottle gc`
            switch.release()  # the teardown above ran: nothing left for the reaper
    switch = reaper.start(plan.backend, plan.slug, plan.state_dir)
    try:
        with plugins.call_first("launch", plan=plan) as bottle:
            yield bottle, ()
    finally:
        mark_ended(plan.state_dir)
        switch.release()


def discard_state(plan: Plan) -> None:
    """Remove the state dir of a bottle that was planned but never launched."""
    shutil.rmtree(plan.state_dir, ignore_errors=True)
