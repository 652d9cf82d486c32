"""The pool keeper: the background process that owns a warm pool's bottles (see :mod:`bottle_core.pool`).

Started by ``bottle pool fill`` in a session of its own; it keeps the pool's
size of bottles ready, launching another each time a run has claimed one and
is past its start-up (:data:`REFILL_WAIT`), and
ends, taking its unclaimed bottles down, when it is asked to drain (SIGTERM,
``bottle pool drain``), when no run claimed a bottle for the idle limit, when
the manifest's definition of the agent or its bottle changes (or the manifest
can no longer be read), or after :data:`MAX_FAILURES` launches failed in a
row. Each pooled bottle has its reaper like any bottle with its owner: kill
the keeper and its bottles go with it.

:class:`Keeper` is the logic, with the launching and the clock given to it
(the unit tests give fakes); :func:`main` wires it to the real backend.

Usage (by ``bottle_core.pool.fill`` only)::

    python -m bottle_core.pool_keeper POOL_FOLDER
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import pool

#: How often the keeper looks at its folder (claims, size, drain requests) and the manifest.
TICK = 0.2
#: Launches failing in a row before the keeper gives up and ends.
MAX_FAILURES = 3
#: How long a claimed bottle may wait for its run to record itself as the owner; a run that died before
#: it did leaves a bottle nobody would remove, so the keeper removes it.
HAND_OVER_GRACE = 60.0
#: A claimed bottle's replacement is launched once the claiming run is past its start-up, or this long after
#: the claim: a launch (a Python start, the engine's work, the bundle's start) takes CPU the run's own
#: start-up needs on a small machine (on two busy cores it made a claimed run 0.35-1.1 s slower).
REFILL_WAIT = 30.0


class Held:
    """One ready pooled bottle the keeper owns."""

    def __init__(self, slug: str, entry: dict):
        self.slug = slug
        #: What ``ready/<slug>.json`` holds: the bottle's Plan and its launch key.
        self.entry = entry

    def release(self) -> None:
        """A run took it over: let go of it without removing it."""

    def remove(self) -> None:
        """Take it down (it was never claimed, or its run died before taking it over)."""

    def run_started(self) -> bool:
        """Whether the run that claimed it is past its start-up (it said so: :func:`bottle_core.pool.started`),
        or over (its state dir marked ended)."""
        from .plan import FINISHED

        state_dir = Path(self.entry["plan"]["state_dir"])
        return (state_dir / pool.STARTED).exists() or (state_dir / FINISHED).exists()

    def taken_over(self) -> bool:
        """Whether the run that claimed it has recorded itself as its owner and still runs."""
        from .reaper import alive, handed_to

        return alive(handed_to(self.entry["plan"]["state_dir"]))


@dataclass
class Keeper:
    """Keeps ``size`` bottles ready in ``folder`` until a reason to end; one :meth:`tick` at a time."""

    folder: Path
    launch_one: Callable[[], Held]
    definition: Callable[[], str]
    now: Callable[[], float] = time.monotonic
    held: dict[str, Held] = field(default_factory=dict)
    #: Claimed bottles whose run has not recorded itself as their owner yet, with when the claim was seen.
    handing: dict[str, tuple[Held, float]] = field(default_factory=dict)
    #: Claimed bottles whose run is not past its start-up yet (their replacement waits), with the claim's time.
    starting: dict[str, tuple[Held, float]] = field(default_factory=dict)
    launching: list[threading.Thread] = field(default_factory=list)
    done: list[Any] = field(default_factory=list)  # what finished launches gave: a Held or an exception
    failures: int = 0
    error: str | None = None
    draining: bool = False
    ended: str | None = None
    rounds: int = 0  # in the status: a watcher can tell the keeper has looked again since a change

    def __post_init__(self) -> None:
        self.started_definition = self.definition()
        self.last_claim = self.now()
        self._lock = threading.Lock()

    # -- what the folder says ---------------------------------------------------------------------

    def config(self) -> dict:
        return pool.read_json(self.folder / pool.CONFIG_FILE)

    def size(self) -> int:
        return int(self.config().get("size") or 0)

    def idle_seconds(self) -> float:
        return float(self.config().get("idle_minutes") or pool.DEFAULT_IDLE_MINUTES) * 60

    # -- one round ------------------------------------------------------------------------------------

    def tick(self) -> bool:
        """Note claims and finished launches, end if there is a reason, else launch what is missing.

        :return: False once the keeper has ended (its unclaimed bottles taken down).
        """
        self.rounds += 1
        self._collect()
        for slug in [slug for slug in self.held if not (self.folder / pool.READY / f"{slug}.json").exists()]:
            held = self.held.pop(slug)
            self.handing[slug] = self.starting[slug] = (held, self.now())  # claimed
            (self.folder / pool.CLAIMED / f"{slug}.json").unlink(missing_ok=True)
            self.last_claim = self.now()
        self._hand_over()
        self.starting = {slug: (held, seen) for slug, (held, seen) in self.starting.items()
                         if self.now() - seen <= REFILL_WAIT and not held.run_started()}
        reason = self.reason_to_end()
        if reason:
            self.end(reason)
            return False
        for slug in list(self.held)[: max(0, len(self.held) - self.size())]:
            self.retire(slug)
        missing = self.size() - len(self.held) - len(self.launching) - len(self.starting)
        if self.failures < MAX_FAILURES:
            for _ in range(max(0, missing)):
                self._start_launch()
        self.write_status()
        return True

    def _hand_over(self, *, ending: bool = False) -> None:
        """Let go of each claimed bottle its run has taken over; remove one whose run died before it did."""
        for slug, (held, seen) in list(self.handing.items()):
            if held.taken_over():
                held.release()  # the run's own reaper watches it now
            elif ending or self.now() - seen > HAND_OVER_GRACE:
                print(f"bottle-pool: {slug} was claimed but never taken over; removing it", file=sys.stderr,
                      flush=True)
                held.remove()
            else:
                continue
            del self.handing[slug]

    def reason_to_end(self) -> str | None:
        if self.draining or (self.folder / pool.DRAIN_FILE).exists():
            return "drained"
        if self.failures >= MAX_FAILURES and not self.launching:
            return f"{self.failures} launches failed in a row"
        if self.now() - self.last_claim > self.idle_seconds():
            return "idle"
        if self.definition() != self.started_definition:
            return "the manifest's definition of the agent changed"
        return None

    def retire(self, slug: str) -> None:
        """Take an unclaimed bottle down; one a run claimed meanwhile is let go instead (the rename decides)."""
        held = self.held.pop(slug)
        try:
            os.rename(self.folder / pool.READY / f"{slug}.json", self.folder / pool.RETIRED / f"{slug}.json")
        except FileNotFoundError:
            self.handing[slug] = (held, self.now())  # a run claimed it first: it is the run's to take over
            return
        held.remove()
        (self.folder / pool.RETIRED / f"{slug}.json").unlink(missing_ok=True)

    def end(self, reason: str) -> None:
        """Wait for launches under way, then take every unclaimed bottle down."""
        self.ended = reason
        print(f"bottle-pool: ending ({reason})", file=sys.stderr, flush=True)
        for thread in list(self.launching):
            thread.join()
        self._collect(keep=False)
        for slug in list(self.held):
            self.retire(slug)
        deadline = time.monotonic() + HAND_OVER_GRACE
        while self.handing and time.monotonic() < deadline:  # runs that claimed just now: let them take over
            self._hand_over()
            if self.handing:
                time.sleep(TICK)
        self._hand_over(ending=True)
        self.write_status()

    # -- launches ---------------------------------------------------------------------------------------

    def _start_launch(self) -> None:
        def run() -> None:
            try:
                result: Any = self.launch_one()
            except BaseException as exc:  # noqa: BLE001 - reported in the status, the keeper goes on
                result = exc
            with self._lock:
                self.done.append(result)

        thread = threading.Thread(target=run, name="pool-launch", daemon=True)
        self.launching.append(thread)
        thread.start()

    def _collect(self, keep: bool = True) -> None:
        """Finished launches: a ready bottle is announced (or, when ending, kept only to be retired)."""
        with self._lock:
            finished, self.done = self.done, []
        self.launching = [thread for thread in self.launching if thread.is_alive()]
        for result in finished:
            if isinstance(result, BaseException):
                self.failures += 1
                self.error = str(result) or type(result).__name__
                print(f"bottle-pool: a launch failed: {self.error}", file=sys.stderr, flush=True)
                continue
            self.failures, self.error = 0, None
            self.held[result.slug] = result
            pool.write_json(self.folder / pool.READY / f"{result.slug}.json", result.entry)

    def write_status(self) -> None:
        pool.write_json(self.folder / pool.STATUS_FILE, {
            "pid": os.getpid(), "ready": len(self.held), "launching": len(self.launching), "error": self.error,
            "ended": self.ended, "rounds": self.rounds})

    def run(self) -> None:
        while self.tick():
            time.sleep(TICK)


# -- the real thing ---------------------------------------------------------------------------------------


class LaunchedHeld(Held):
    """A pooled bottle launched here: its launch context entered, its reaper watching this process."""

    def __init__(self, slug: str, entry: dict, launch, switch, state_dir: str):
        super().__init__(slug, entry)
        self.launch, self.switch, self.state_dir = launch, switch, state_dir

    def release(self) -> None:
        self.switch.release()  # the claiming run's own reaper watches it now

    def remove(self) -> None:
        from .plan import mark_ended

        try:
            self.launch.__exit__(None, None, None)
        finally:
            mark_ended(self.state_dir)
            self.switch.release()


def launcher(folder: Path) -> Callable[[], Held]:
    """Launch one pooled bottle of the pool's agent, as ``pool.json`` describes it now (a later fill may have
    changed the folder the bottles are for)."""
    from . import reaper, session
    from .manifest import Manifest
    from .plan import UNCLAIMED, mark_ended
    from .spec import BottleSpec

    def launch_one() -> Held:
        config = pool.read_json(folder / pool.CONFIG_FILE)
        spec = BottleSpec(manifest=Manifest.load(Path(config["manifest"])), agent=config["agent"], copy_cwd=False,
                          cwd=Path(config["cwd"]))
        plugins = session.plugins_for(spec, config["backend"])
        pool.require_pooling(plugins)
        plan = session.prepare(plugins, spec)
        (Path(plan.state_dir) / UNCLAIMED).touch()
        switch = reaper.start(plan.backend, plan.slug, plan.state_dir)
        launch = plugins.call_first("launch_pooled", plan=plan)
        try:
            bottle = launch.__enter__()
            try:
                plugins.call_each("provision_ca", plan=bottle.plan, bottle=bottle)
                bottle.ready()  # the bundle waits for its run
            except BaseException:
                launch.__exit__(None, None, None)
                raise
        except BaseException:
            mark_ended(plan.state_dir)
            switch.release()
            raise
        launched = bottle.plan
        entry = {"key": pool.launch_key(launched), "plan": json.loads(launched.model_dump_json())}
        print(f"bottle-pool: {launched.slug} ready", file=sys.stderr, flush=True)
        return LaunchedHeld(launched.slug, entry, launch, switch, launched.state_dir)

    return launch_one


def definition(manifest_path: str, agent: str) -> Callable[[], str]:
    """A digest of the manifest's definition of ``agent`` and its bottle (read again only when the file changes)."""
    seen: dict[str, Any] = {}

    def digest() -> str:
        from .manifest import Manifest

        try:
            stat = os.stat(manifest_path)
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            return "the manifest is gone"
        if seen.get("stamp") != stamp:
            try:
                manifest = Manifest.load(Path(manifest_path))
                agent_def = manifest.agent(agent)
                shown = [agent_def.model_dump(mode="json"), manifest.bottles[agent_def.bottle].model_dump(mode="json"),
                         manifest.prompt_text(agent)]
                value = hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()
            except Exception as exc:  # noqa: BLE001 - an unreadable manifest ends the pool like a changed one
                value = f"unreadable: {exc}"
            seen.update(stamp=stamp, value=value)
        return seen["value"]

    return digest


def main(argv: list[str]) -> int:
    (folder_arg,) = argv
    folder = Path(folder_arg)
    config = pool.read_json(folder / pool.CONFIG_FILE)
    keeper = Keeper(folder, launcher(folder), definition(config["manifest"], config["agent"]))

    def drain(_signum, _frame) -> None:
        keeper.draining = True

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    keeper.write_status()
    keeper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
