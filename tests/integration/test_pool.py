"""The warm pool on the real engine: its keeper owns its bottles, nothing secret waits in them, nothing is left.

That a claimed pooled bottle behaves as a cold one is shown by the isolation,
egress, secrets, git and supervision tests, run both ways (the ``start`` fixture).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from .bottles import bottle_cli, left_after, ready_slugs, was_claimed, write_manifest

pytestmark = pytest.mark.integration

REAL = "real-pool-token-never-before-a-claim"


def pool_row(manifest: Path, agent: str) -> dict | None:
    rows = json.loads(bottle_cli("pool", "ls", "--json").stdout)
    return next((row for row in rows if row["agent"] == agent and row["manifest"] == str(manifest.resolve())), None)


def fill(manifest: Path, agent: str, size: int = 1) -> list[str]:
    assert bottle_cli("trust", "-m", str(manifest)).returncode == 0
    filled = bottle_cli("pool", "fill", "-m", str(manifest), "--size", str(size), agent, cwd=manifest.parent,
                        timeout=600)
    assert filled.returncode == 0, filled.stderr.decode()
    slugs = ready_slugs(manifest, agent)
    assert len(slugs) == size
    return slugs


def gone(slug: str) -> bool:
    """Nothing of bottle ``slug`` left once its removal (a process of its own) had time to finish."""
    return left_after("bottle.slug", slug) == ([], [])


def wait_until(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("POOL_TOKEN", REAL)
    return write_manifest(tmp_path, {
        "bottles": {"dev": {"secrets": {"TOKEN": {"from_env": "POOL_TOKEN", "hosts": ["allowed.test"]}}}},
        "agents": {"warm": {"bottle": "dev"}, "other": {"bottle": "dev"}},
    })


@pytest.fixture
def drained(manifest):
    yield
    bottle_cli("pool", "drain", "-m", str(manifest))


def test_killing_the_keeper_ends_its_pooled_bottles(manifest, drained):
    slugs = fill(manifest, "warm", size=2)
    listed = {row["slug"] for row in json.loads(bottle_cli("ls", "--json").stdout)}
    assert set(slugs) <= listed, "pooled bottles show in `bottle ls`"
    keeper = pool_row(manifest, "warm")["keeper"]
    os.kill(keeper, signal.SIGKILL)
    for slug in slugs:
        wait_until(lambda slug=slug: gone(slug), f"pooled bottle {slug} removed after its keeper died")
    assert pool_row(manifest, "warm")["ready"] == 0


def test_drain_leaves_nothing(manifest, drained):
    slugs = fill(manifest, "warm", size=2)
    out = bottle_cli("pool", "drain", "-m", str(manifest), "warm")
    assert out.returncode == 0 and b"drained the pool of warm" in out.stdout, out.stderr
    assert all(gone(slug) for slug in slugs)
    assert pool_row(manifest, "warm") is None
    assert bottle_cli("pool", "drain", "-m", str(manifest), "warm").returncode == 2  # no such pool any more


def test_a_changed_definition_ends_the_pool_and_another_agents_change_does_not(manifest, drained):
    (slug,) = fill(manifest, "warm")
    data = json.loads(manifest.read_text())
    # Another agent's definition changes: the pool stays (the keeper has looked twice since).
    data["agents"]["other"]["prompt"] = "something else"
    manifest.write_text(json.dumps(data))
    rounds = pool_row(manifest, "warm")["rounds"]
    wait_until(lambda: pool_row(manifest, "warm")["rounds"] >= rounds + 2, "the keeper looked again")
    assert pool_row(manifest, "warm")["keeper"] and ready_slugs(manifest, "warm") == [slug]
    # Its own bottle's definition changes: the pool ends and its bottle goes.
    data["bottles"]["dev"]["env"] = {"NEW": "1"}
    manifest.write_text(json.dumps(data))
    wait_until(lambda: not (pool_row(manifest, "warm") or {}).get("keeper"), "the keeper ended")
    assert gone(slug)


def test_no_real_secret_in_a_pooled_bottle_before_its_claim(manifest, drained):
    (slug,) = fill(manifest, "warm")

    def docker(*args: str) -> str:
        import subprocess

        return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout

    agent, bundle = f"bottle-{slug}-agent", f"bottle-{slug}-bundle"
    # Everything the pooled bottle holds: the agent's environment and files, the bundle's configuration.
    seen = docker("exec", "-u", "1000", agent, "sh", "-c", "env; cat /proc/1/environ")
    seen += docker("exec", "-u", "0", bundle, "sh", "-c", "cat /etc/bottle/*; env")
    seen += docker("inspect", agent, bundle)
    assert "TOKEN=bottle-placeholder-" in seen
    assert REAL not in seen
    assert docker("exec", "-u", "0", bundle, "ls", "/etc/bottle").split() == ["bundle.json", "pooled"]
    # The claim brings the value to the bundle alone, for the run.
    out = bottle_cli("exec", "-m", str(manifest), "warm", "--", "sh", "-c", "printenv TOKEN", cwd=manifest.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"bottle-placeholder-") and REAL.encode() not in out.stdout
    assert was_claimed(slug) and gone(slug)


def test_a_claimed_bottle_is_never_reused_and_the_keeper_refills(manifest, drained):
    (first,) = fill(manifest, "warm")
    run = ["exec", "-m", str(manifest), "warm", "--", "touch", "/workspace/mark"]
    out = bottle_cli(*run, cwd=manifest.parent)
    assert out.returncode == 0 and b"starting cold" not in out.stderr, out.stderr
    assert was_claimed(first) and gone(first)
    wait_until(lambda: len(ready_slugs(manifest, "warm")) == 1, "the keeper refilled the pool")
    (second,) = ready_slugs(manifest, "warm")
    assert second != first
    check = bottle_cli("exec", "-m", str(manifest), "warm", "--", "sh", "-c", "test ! -e /workspace/mark && echo fresh",
                       cwd=manifest.parent)
    assert check.returncode == 0 and check.stdout.strip() == b"fresh", check.stderr
    assert was_claimed(second)


def test_a_pooled_bottle_found_gone_starts_the_run_cold_with_a_note(manifest, drained):
    import subprocess

    (slug,) = fill(manifest, "warm")
    # Its agent goes behind the keeper's back (removed by hand, or the engine lost it): the entry still says ready.
    subprocess.run(["docker", "rm", "-f", f"bottle-{slug}-agent"], check=True, capture_output=True)
    out = bottle_cli("exec", "-m", str(manifest), "warm", "--", "sh", "-c", "printenv TOKEN", cwd=manifest.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"bottle-placeholder-") and REAL.encode() not in out.stdout
    notes = [line for line in out.stderr.decode().splitlines() if "starting cold" in line]
    assert notes == [f"bottle: pooled bottle {slug} is gone (no running agent); starting cold"], out.stderr
    assert was_claimed(slug) and gone(slug), "what was left of the pooled bottle is removed"
