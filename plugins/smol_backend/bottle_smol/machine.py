"""The agent's microVM: its name, its create flags, and a lifecycle that always removes it."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bottle_core import agent
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan, Resources

from .engine import Engine, SmolvmError, Stdin

SLUG_LABEL = "bottle.slug"
AGENT_LABEL = "bottle.agent"
ROLE_LABEL = "bottle.role"
PID_LABEL = "bottle.pid"
STATE_DIR_LABEL = "bottle.state-dir"
#: Keeps an image without a long-running CMD alive; commands arrive through ``machine exec``.
WORKLOAD = ("sleep", "infinity")
MIB = 1024 * 1024
MAX_CPUS = 16  # smolvm clamps above this, with a warning


def machine_name(slug: str) -> str:
    """``bottle-<slug>``, made to fit smolvm's name rules ([A-Za-z0-9_-], no ``--``, no trailing ``-``)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"bottle-{slug}")
    name = re.sub(r"-{2,}", "-", name)[:128].rstrip("-")
    return name


def labels(plan: Plan) -> dict[str, str]:
    """Labels that let ``bottle ls``/``gc`` find this machine again (read back from ``ls --json``)."""
    return {SLUG_LABEL: plan.slug, AGENT_LABEL: plan.agent, ROLE_LABEL: "agent", PID_LABEL: str(os.getpid()),
            STATE_DIR_LABEL: plan.state_dir}


def cpus(resources: Resources) -> int:
    """Whole vCPUs for the microVM: the limit rounded up, within smolvm's range."""
    return max(1, min(MAX_CPUS, math.ceil(resources.cpus)))


def mem_mib(resources: Resources) -> int:
    """The microVM's memory in MiB (smolvm's floor is 64)."""
    return max(64, resources.memory_bytes // MIB)


def create_options(plan: Plan) -> list[str]:
    """Resources as the plan recorded them, and the egress policy: the bundle's address is the only peer,
    DNS goes to the bundle too (from the network the launch made, which may have moved since ``prepare``)."""
    bundle, recorded = plan.network.bundle_ip, plan.backend_options
    options = ["--cpus", str(recorded["cpus"]), "--mem", str(recorded["mem_mib"]),
               "--allow-cidr", f"{bundle}/32", "--dns", bundle]
    for key, value in agent.environment(plan).items():
        options += ["-e", f"{key}={value}"]
    return options


def wait_running(engine: Engine, name: str, *, timeout: float = 30.0) -> dict:
    """Confirm with ``status --json`` that the machine runs (start's stdout is not a contract)."""
    deadline = time.monotonic() + timeout
    state = "unknown"
    while True:
        status = engine.status(name)
        state = (status or {}).get("state", "missing")
        if state == "running":
            return status  # type: ignore[return-value]
        if state in ("failed", "stopped", "missing") or time.monotonic() >= deadline:
            raise BottleRuntimeError(f"microVM {name} is {state} after start, not running",
                                     hint="see `smolvm machine ls --json` and the machine's agent-console.log")
        time.sleep(0.5)


def remove(engine: Engine, name: str) -> None:
    """Stop and delete ``name``; a machine that is already gone is fine."""
    try:
        engine.stop(name)
    except SmolvmError as exc:
        if "not found" in exc.detail:
            return
        # delete -f stops a running machine itself, so go on
    try:
        engine.delete(name)
    except SmolvmError as exc:
        if "not found" not in exc.detail:
            raise


@contextmanager
def running_machine(engine: Engine, plan: Plan, image: Stdin, *, image_ref: str = "-",
                    start_timeout: float = 300) -> Iterator[str]:
    """Create the agent's microVM from ``image`` (a ``docker save`` stream), start it, yield its name.

    The machine is stopped and deleted on the way out, whether the body
    finished, raised, or was interrupted -- also when create or start failed
    halfway.
    """
    name = plan.backend_options["machine"]
    try:
        engine.create(name, labels=labels(plan), image=image_ref, options=create_options(plan),
                      workload=WORKLOAD, stdin=image)
    except BaseException as exc:
        if isinstance(exc, SmolvmError) and "already exists" in exc.detail:
            raise  # not ours: leave it alone
        _remove_quietly(engine, name)
        raise
    try:
        engine.start(name, timeout=start_timeout)
        wait_running(engine, name)
        yield name
    except BaseException:
        _remove_quietly(engine, name)
        raise
    remove(engine, name)


def _remove_quietly(engine: Engine, name: str) -> None:
    # Already failing: a cleanup error must not hide the first one, but the user must hear of a leftover.
    try:
        remove(engine, name)
    except Exception as exc:  # noqa: BLE001
        print(f"bottle: could not remove microVM {name}: {exc}; run `bottle gc`", file=sys.stderr)
