"""The pool keeper's logic (bottle_core.pool_keeper.Keeper) with fake launches and a fake clock: no engine."""

from __future__ import annotations

import os
import threading

import pytest

from bottle_core import pool
from bottle_core.pool_keeper import MAX_FAILURES, Held, Keeper


class FakeHeld(Held):
    def __init__(self, slug: str, log: list, owners: dict, starts: dict):
        super().__init__(slug, {"key": "k", "plan": {"slug": slug}})
        self.log, self.owners, self.starts = log, owners, starts

    def taken_over(self) -> bool:
        return self.owners.get(self.slug, True)

    def run_started(self) -> bool:
        return self.starts.get(self.slug, True)

    def release(self) -> None:
        self.log.append(("released", self.slug))

    def remove(self) -> None:
        self.log.append(("removed", self.slug))


class Clock:
    def __init__(self) -> None:
        self.time = 1000.0

    def __call__(self) -> float:
        return self.time


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "pool"
    for sub in (pool.READY, pool.CLAIMED, pool.RETIRED):
        (folder / sub).mkdir(parents=True)
    pool.write_json(folder / pool.CONFIG_FILE, {"size": 2, "idle_minutes": 1})
    return folder


def make_keeper(folder, *, fail: bool = False, definition: list | None = None, gate: threading.Event | None = None,
                owners: dict | None = None, starts: dict | None = None):
    log: list = []
    owners = {} if owners is None else owners
    starts = {} if starts is None else starts
    count = iter(range(1000))
    definition = definition if definition is not None else ["v1"]

    def launch_one() -> Held:
        if gate is not None:
            gate.wait(10)
        if fail:
            raise RuntimeError("the engine refused")
        return FakeHeld(f"demo-{next(count):03d}", log, owners, starts)

    clock = Clock()
    keeper = Keeper(folder, launch_one, lambda: definition[0], now=clock)
    return keeper, log, clock


def settle(keeper: Keeper) -> None:
    """Let every launch under way finish, then one more round (bounded: launches are instant fakes)."""
    for thread in list(keeper.launching):
        thread.join(10)
    assert keeper.tick()


def ready(folder) -> list[str]:
    return pool.ready_slugs(folder)


def claim(folder, slug: str) -> None:
    """What a run does: rename the bottle's ready file into claimed/."""
    os.rename(folder / pool.READY / f"{slug}.json", folder / pool.CLAIMED / f"{slug}.json")


def test_fills_to_its_size_and_announces_each_ready_bottle(folder):
    keeper, log, _ = make_keeper(folder)
    assert keeper.tick()
    settle(keeper)
    assert ready(folder) == ["demo-000", "demo-001"]
    assert pool.read_json(folder / pool.STATUS_FILE)["ready"] == 2
    assert log == []


def test_refills_after_a_claim_and_lets_the_claimed_bottle_go_without_removing_it(folder):
    keeper, log, _ = make_keeper(folder)
    keeper.tick()
    settle(keeper)
    claim(folder, "demo-000")
    settle(keeper)  # notices the claim, starts a launch
    settle(keeper)
    assert log == [("released", "demo-000")]
    assert ready(folder) == ["demo-001", "demo-002"]
    assert not (folder / pool.CLAIMED / "demo-000.json").exists()


def test_drain_removes_every_unclaimed_bottle_and_ends(folder):
    keeper, log, _ = make_keeper(folder)
    keeper.tick()
    settle(keeper)
    (folder / pool.DRAIN_FILE).touch()
    assert not keeper.tick()
    assert sorted(log) == [("removed", "demo-000"), ("removed", "demo-001")]
    assert ready(folder) == [] and keeper.ended == "drained"


def test_a_bottle_claimed_while_the_keeper_retires_it_is_let_go_not_removed(folder):
    keeper, log, _ = make_keeper(folder)
    keeper.tick()
    settle(keeper)
    claim(folder, "demo-001")  # a run won the rename before the keeper saw the drain
    keeper.draining = True
    keeper.end("drained")
    assert sorted(log) == [("released", "demo-001"), ("removed", "demo-000")]


def test_idle_limit_ends_the_pool_and_a_claim_restarts_the_count(folder):
    keeper, log, clock = make_keeper(folder)
    keeper.tick()
    settle(keeper)
    clock.time += 50
    claim(folder, "demo-000")
    settle(keeper)
    clock.time += 50  # 100 s since the start, 50 since the claim: within the minute
    assert keeper.tick()
    clock.time += 11
    assert not keeper.tick()
    assert keeper.ended == "idle"
    assert ("removed", "demo-001") in log


def test_a_changed_definition_ends_the_pool(folder):
    definition = ["v1"]
    keeper, log, _ = make_keeper(folder, definition=definition)
    keeper.tick()
    settle(keeper)
    definition[0] = "v2"
    assert not keeper.tick()
    assert "definition" in keeper.ended
    assert sorted(log) == [("removed", "demo-000"), ("removed", "demo-001")]


def test_a_launch_under_way_when_the_pool_ends_is_removed_once_it_is_up(folder):
    gate = threading.Event()
    keeper, log, _ = make_keeper(folder, gate=gate)
    keeper.tick()  # two launches start and wait at the gate
    keeper.draining = True
    threading.Timer(0.05, gate.set).start()
    assert not keeper.tick()
    assert sorted(log) == [("removed", "demo-000"), ("removed", "demo-001")]


def test_failing_launches_are_reported_and_end_the_keeper_after_a_few(folder):
    keeper, _, _ = make_keeper(folder, fail=True)
    rounds = 0
    while keeper.tick():
        for thread in list(keeper.launching):
            thread.join(10)
        rounds += 1
        assert rounds < 20
    assert keeper.failures >= MAX_FAILURES and "the engine refused" in keeper.error
    assert "failed" in keeper.ended
    assert pool.read_json(folder / pool.STATUS_FILE)["error"] == "the engine refused"


def test_a_smaller_size_retires_the_extra_bottles(folder):
    keeper, log, _ = make_keeper(folder)
    keeper.tick()
    settle(keeper)
    pool.write_json(folder / pool.CONFIG_FILE, {"size": 1, "idle_minutes": 1})
    assert keeper.tick()
    assert log == [("removed", "demo-000")] and ready(folder) == ["demo-001"]


def test_a_claimed_bottle_whose_run_died_before_taking_it_over_is_removed(folder):
    from bottle_core.pool_keeper import HAND_OVER_GRACE

    owners = {"demo-000": False}  # the run renamed the entry, then died before recording itself as the owner
    pool.write_json(folder / pool.CONFIG_FILE, {"size": 2, "idle_minutes": 10})
    keeper, log, clock = make_keeper(folder, owners=owners)
    keeper.tick()
    settle(keeper)
    claim(folder, "demo-000")
    settle(keeper)
    assert log == [] and "demo-000" in keeper.handing, "waits for the run to take it over"
    clock.time += HAND_OVER_GRACE + 1
    settle(keeper)
    assert log == [("removed", "demo-000")] and not keeper.handing


def test_a_claimed_bottles_replacement_waits_until_its_run_is_past_its_start_up(folder):
    starts = {"demo-000": False, "demo-002": False}
    keeper, log, _ = make_keeper(folder, starts=starts)
    keeper.tick()
    settle(keeper)
    claim(folder, "demo-000")
    settle(keeper)
    settle(keeper)
    assert ready(folder) == ["demo-001"] and not keeper.launching, "no launch while the run starts"
    assert log == [("released", "demo-000")], "taken over all the same"
    starts["demo-000"] = True  # the run says it is past its start-up
    settle(keeper)
    settle(keeper)
    assert ready(folder) == ["demo-001", "demo-002"]


def test_a_claimed_bottles_replacement_comes_at_the_latest_after_the_wait(folder):
    from bottle_core.pool_keeper import REFILL_WAIT

    keeper, _, clock = make_keeper(folder, starts={"demo-000": False})
    keeper.tick()
    settle(keeper)
    claim(folder, "demo-000")
    settle(keeper)
    assert ready(folder) == ["demo-001"]
    clock.time += REFILL_WAIT + 1  # a run that never says so (stalled, or of another version of bottle)
    settle(keeper)
    settle(keeper)
    assert ready(folder) == ["demo-001", "demo-002"]


def test_held_run_started_reads_the_claimed_bottles_state_dir(tmp_path):
    from bottle_core.plan import FINISHED

    held = Held("demo-000", {"key": "k", "plan": {"slug": "demo-000", "state_dir": str(tmp_path)}})
    assert not held.run_started()
    pool.started(str(tmp_path))
    assert held.run_started()
    (tmp_path / pool.STARTED).unlink()
    (tmp_path / FINISHED).write_text("1\n")
    assert held.run_started(), "a run that ended (or died, and its reaper marked it) is past its start-up too"
