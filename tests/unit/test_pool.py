"""Claiming from a warm pool (bottle_core.pool), the hand-over of ownership, and a backend that cannot pool: no engine."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from bottle_core import hookimpl, pool, reaper, session
from bottle_core.errors import UsageError
from bottle_core.plan import FINISHED, UNCLAIMED

from .test_reaper import run_main
from bottle_core.testing import FakeBackend, FakeBottle


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return tmp_path / "xdg"


def offer(pooled, *, keeper: int | None = None):
    """What a keeper does once a pooled bottle is ready: its entry in ready/, its state dir marked unclaimed."""
    folder = pool.directory(pooled.manifest, pooled.agent, pooled.backend)
    for sub in (pool.READY, pool.CLAIMED, pool.RETIRED):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    pool.write_json(folder / pool.STATUS_FILE, {"pid": keeper or os.getpid()})
    pool.write_json(folder / pool.READY / f"{pooled.slug}.json",
                    {"key": pool.launch_key(pooled), "plan": pooled.model_dump(mode="json")})
    Path(pooled.state_dir, UNCLAIMED).touch()
    return folder


def test_a_run_claims_a_fitting_pooled_bottle_once(plan_factory):
    pooled, run = plan_factory(), plan_factory()
    folder = offer(pooled)
    claim = pool.claim(run)
    assert claim is not None and claim.pooled.slug == pooled.slug
    used = claim.plan
    # The pooled bottle's slug, state dir, network and placeholders; the run's own everything else.
    assert (used.slug, used.state_dir, used.network) == (pooled.slug, pooled.state_dir, pooled.network)
    assert [s.placeholder for s in used.secrets] == [s.placeholder for s in pooled.secrets]
    assert used.supervise == run.supervise and used.created_at == run.created_at
    # The run's prompt is in the claimed bottle's state dir; the run's own state dir stays until the claim settles.
    assert open(used.prompt_file).read() == "You are demo. Be brief."
    assert claim.own is run and os.path.exists(run.state_dir)
    pool.settled(claim)
    assert not os.path.exists(run.state_dir)
    assert not os.path.exists(os.path.join(used.state_dir, UNCLAIMED))
    assert pool.ready_slugs(folder) == []
    # Never reused: the next run finds nothing to claim.
    assert pool.claim(plan_factory()) is None


def test_a_bottle_launched_differently_is_not_claimed(plan_factory):
    pooled = plan_factory({"bottles": {"dev": {"env": {"MODE": "pool"}}}, "agents": {"demo": {"bottle": "dev"}}})
    offer(pooled)
    run = plan_factory({"bottles": {"dev": {"env": {"MODE": "run"}}}, "agents": {"demo": {"bottle": "dev"}}})
    assert pool.claim(run) is None
    bigger = plan_factory({"bottles": {"dev": {"env": {"MODE": "pool"}, "memory": "8g"}},
                           "agents": {"demo": {"bottle": "dev"}}})
    assert pool.claim(bigger) is None


def test_what_a_claim_brings_along_is_no_part_of_the_key(plan_factory):
    """Allow-list, supervision rules, prompt and git identity are the run's: a pooled bottle takes them on claim."""
    pooled = plan_factory({"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev", "prompt": "old"}}})
    offer(pooled)
    run = plan_factory({"bottles": {"dev": {"egress": {"allow": ["example.org"]}}},
                        "agents": {"demo": {"bottle": "dev", "prompt": "new",
                                            "supervise": {"mode": "enforce", "deny": ["Bash(rm:*)"]}}}})
    claim = pool.claim(run)
    assert claim is not None
    assert "example.org" in claim.plan.egress.allow and claim.plan.supervise.deny == ["Bash(rm:*)"]


def test_no_claim_from_a_pool_whose_keeper_is_gone(plan_factory):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    offer(plan_factory(), keeper=dead.pid)
    assert pool.claim(plan_factory()) is None


def test_a_backend_without_pool_hooks_refuses_to_pool(bottle_plugins):
    bottle_plugins.register(FakeBackend(), "fake", "backend")
    with pytest.raises(UsageError, match="backend 'fake' cannot keep a warm pool"):
        pool.require_pooling(bottle_plugins)


class PoolingBackend(FakeBackend):
    """A fake backend that can pool: ``claim_pooled`` yields a FakeBottle of the run's fitted Plan."""

    @hookimpl
    def launch_pooled(self, plan):
        return self.launch(plan)

    @hookimpl
    def claim_pooled(self, plan, pooled):
        @contextmanager
        def claimed():
            self.events.append(("claim", pooled.slug))
            try:
                self.bottle = FakeBottle(plan, self.events)
                yield self.bottle
            finally:
                self.events.append("teardown")

        return claimed()


def test_session_claims_provisions_what_is_per_run_and_records_the_new_owner(bottle_plugins, plan_factory):
    log: list = []
    backend = bottle_plugins.register(PoolingBackend(log), "fake", "backend")
    pool.require_pooling(bottle_plugins)
    pooled = plan_factory()
    offer(pooled)
    seen = []

    class Watch:
        @hookimpl
        def provision_ca(self, plan):
            seen.append("ca")

        @hookimpl
        def provision_prompt(self, plan):
            seen.append(("prompt", plan.slug))

    bottle_plugins.register(Watch(), "watch", "backend")
    with session.running(bottle_plugins, plan_factory()) as bottle:
        assert bottle.plan.slug == pooled.slug
        assert reaper.handed_to(pooled.state_dir) == os.getpid()
        assert Path(pooled.state_dir, pool.STARTED).exists(), "past its start-up: the keeper may refill now"
    assert log[0] == ("claim", pooled.slug) and "launch" not in log and log[-1] == "teardown"
    assert seen == [("prompt", pooled.slug)], "the CA is trusted at pool time; the rest is provisioned per run"
    assert backend.bottle.plan.slug == pooled.slug
    assert Path(pooled.state_dir, FINISHED).exists()


class GoneBackend(PoolingBackend):
    """A pooling backend whose pooled bottle is gone by the time the run looks for it."""

    @hookimpl
    def claim_pooled(self, plan, pooled):
        @contextmanager
        def claimed():
            self.events.append(("claim", pooled.slug))
            raise pool.PooledBottleGone(f"pooled bottle {pooled.slug} is gone (no running agent)")
            yield  # pragma: no cover

        return claimed()


def test_a_claimed_bottle_found_gone_starts_the_run_cold_with_a_note(bottle_plugins, plan_factory, capfd):
    log: list = []
    bottle_plugins.register(GoneBackend(log), "fake", "backend")
    pooled, run = plan_factory(), plan_factory()
    offer(pooled)
    with session.running(bottle_plugins, run) as bottle:
        assert bottle.plan.slug == run.slug, "the run's own bottle, started cold"
        assert reaper.handed_to(pooled.state_dir) == os.getpid()
        assert not Path(run.state_dir, pool.STARTED).exists(), "a cold bottle has no keeper to tell"
    assert log[0] == ("claim", pooled.slug) and "launch" in log and log[-1] == "teardown"
    note = [line for line in capfd.readouterr().err.splitlines() if line.startswith("bottle:")]
    assert note == [f"bottle: pooled bottle {pooled.slug} is gone (no running agent); starting cold"]
    assert Path(pooled.state_dir, FINISHED).exists() and Path(run.state_dir, FINISHED).exists()
    assert pool.claim(plan_factory()) is None, "the gone bottle is not offered again"


def test_a_claim_that_loses_the_race_starts_cold_with_a_note(bottle_plugins, plan_factory, capfd, monkeypatch):
    log: list = []
    bottle_plugins.register(PoolingBackend(log), "fake", "backend")
    pooled, run = plan_factory(), plan_factory()
    folder = offer(pooled)
    real_rename = os.rename

    def taken_first(source, target):  # another run renames the entry between the look and the rename
        if str(target).startswith(str(folder / pool.CLAIMED)):
            os.remove(source)
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", taken_first)
    with session.running(bottle_plugins, run) as bottle:
        assert bottle.plan.slug == run.slug
    assert "launch" in log and not any(isinstance(e, tuple) and e[0] == "claim" for e in log)
    assert f"bottle: pooled bottle {pooled.slug} was taken by another run; starting cold" in capfd.readouterr().err


def test_a_claim_that_wins_says_nothing_and_leaves_no_staged_state(bottle_plugins, plan_factory, capfd):
    bottle_plugins.register(PoolingBackend([]), "fake", "backend")
    pooled, run = plan_factory(), plan_factory()
    offer(pooled)
    with session.running(bottle_plugins, run) as bottle:
        assert bottle.plan.slug == pooled.slug
    assert not os.path.exists(run.state_dir)
    assert "starting cold" not in capfd.readouterr().err


def test_a_dead_keepers_reaper_leaves_a_bottle_a_live_run_took_over(monkeypatch, tmp_path):
    reaper.hand_over(str(tmp_path))  # this (live) process claimed it
    assert run_main(monkeypatch, tmp_path, b"") == []  # the keeper died


def test_a_bottle_whose_claiming_run_died_is_swept(monkeypatch, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    reaper.hand_over(str(tmp_path), dead.pid)
    assert run_main(monkeypatch, tmp_path, b"") == [("docker", "demo-abc123")] * 2


def test_the_pooled_packet_filter_serves_a_run_only_when_it_refuses_all_the_run_would(plan_factory):
    from bottle_core.pool import filter_holds

    pooled = plan_factory()
    same = pool.fitted(plan_factory(), pooled)
    assert filter_holds(pooled, same)
    # An engine network made since the pool launched, inside a range the pooled filter refuses: it holds.
    newer = same.model_copy(update={"egress": same.egress.model_copy(
        update={"refused_networks": [*same.egress.refused_networks, "10.213.7.0/24"]})})
    assert filter_holds(pooled, newer)
    # One outside every range it refuses, or a host address it does not: set the filter again.
    outside = same.model_copy(update={"egress": same.egress.model_copy(
        update={"refused_networks": [*same.egress.refused_networks, "203.0.113.0/24"]})})
    assert not filter_holds(pooled, outside)
    host = same.model_copy(update={"egress": same.egress.model_copy(update={"host_addresses": ["198.51.100.7"]})})
    assert not filter_holds(pooled, host)
    # A new engine network's gateway (a host address) inside a private range the pooled filter refuses: it holds...
    gateway = same.model_copy(update={"egress": same.egress.model_copy(
        update={"host_addresses": [*same.egress.host_addresses, "172.29.0.1"]})})
    assert filter_holds(pooled, gateway)
    # ...but not when the run opts a range in that reaches it (host addresses are refused even then).
    def opting(plan, cidr):
        return plan.model_copy(update={"egress": plan.egress.model_copy(update={"allow_private": [cidr]})})

    assert filter_holds(opting(pooled, "172.29.0.0/16"), opting(same, "172.29.0.0/16"))
    assert not filter_holds(opting(pooled, "172.29.0.0/16"), opting(gateway, "172.29.0.0/16"))
    # Anything else the filter is made from (a private range opted in, a rehearsal's model port): again.
    opted = same.model_copy(update={"egress": same.egress.model_copy(update={"allow_private": ["10.1.0.0/16"]})})
    assert not filter_holds(pooled, opted)
