"""The warm pool on the real engine: its keeper owns its bottles, nothing secret waits in them, nothing is left.

That a claimed pooled bottle behaves as a cold one is shown by the isolation,
egress, secrets, git and supervision tests, run both ways (the ``start`` fixture).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bottle_core.errors import BottleRuntimeError
from bottle_core.hookspecs import hookimpl
from bottle_core.spec import BottleSpec

from .bottles import BOTTLE, bottle_cli, bottle_of, docker_plugins, left_after, ready_slugs, warm_pool, was_claimed, \
    write_manifest

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
    seen = docker("exec", "-u", "1000", agent, "env") + docker("exec", "-u", "0", agent, "cat", "/proc/1/environ")
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


def test_the_keeper_refills_once_the_claiming_run_is_past_its_start_up(manifest, drained):
    """The replacement is not launched while the claimed run starts (it would take the run's CPU), but once
    the run says it is past its start-up: here while its command still runs."""
    from bottle_core.plan import state_root
    from bottle_core.pool import STARTED

    (first,) = fill(manifest, "warm")
    run = subprocess.Popen([str(BOTTLE), "exec", "-m", str(manifest), "warm", "--", "sh", "-c", "read line"],
                           cwd=manifest.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (state_root() / first / STARTED).exists(), "the run said it is past its start-up")
        wait_until(lambda: len(ready_slugs(manifest, "warm")) == 1, "the keeper refilled the pool")
        assert run.poll() is None, "refilled while the claimed run's command still runs"
    finally:
        _out, err = run.communicate(b"go\n", timeout=120)
    assert run.returncode == 0 and b"starting cold" not in err, err


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


#: What the agent user tries against a claimed bottle's provisioning, each line printing "<attempt> <exit>".
FORGERIES = r"""
try() { name=$1; shift; "$@" 2>/dev/null; echo "$name $?"; }
try control-folder touch /run/bottle-claim/done
try go-pipe sh -c 'echo go > /run/bottle-claim/go'
try round-folder mkdir -p /run/bottle-provision/0
try container-output sh -c 'echo "bottle-provision: end" > /proc/1/fd/1'
for d in /proc/[0-9]*; do
  [ "$(awk '/^Uid:/ {print $2}' "$d/status" 2>/dev/null)" = 0 ] && try "signal-${d#/proc/}" kill -USR1 "${d#/proc/}"
done
"""


def test_the_agent_cannot_forge_its_provisionings_end_nor_reach_the_root_side(manifest):
    with bottle_of(manifest, "warm", start="pooled") as bottle:
        attempts = dict(line.rsplit(" ", 1) for line in bottle.check(["bash", "-c", FORGERIES]).text().splitlines())
        root_side = subprocess.run(["docker", "exec", "-u", "0", f"bottle-{bottle.plan.slug}-agent", "sh", "-c",
                                    "stat -c '%U %a' /run/bottle-claim"],
                                   capture_output=True, text=True).stdout
        log = subprocess.run(["docker", "logs", f"bottle-{bottle.plan.slug}-agent"], capture_output=True,
                             text=True).stdout
        # The benign side: the round applied, by both users.
        settings = bottle.check(["stat", "-c", "%U %a", "/etc/claude-code/managed-settings.json"]).text().split()
        identity = bottle.exec(["git", "config", "--global", "credential.helper"], workdir="/").returncode
    signals = {name: code for name, code in attempts.items() if name.startswith("signal-")}
    assert signals and all(code != "0" for code in signals.values()), attempts  # root's processes: not the agent's
    assert attempts["control-folder"] != "0" and attempts["go-pipe"] != "0", attempts
    assert attempts["container-output"] != "0", attempts
    assert root_side.split() == ["root", "755"], root_side
    assert log.count("bottle-provision: end") == 1, log
    assert settings == ["root", "644"] and identity == 0


class FailingStep:
    """A provision step that fails, as root or as the agent user, in the first round of a claimed bottle."""

    def __init__(self, user: str | None):
        self.user = user

    @hookimpl(tryfirst=True)
    def provision_git(self, plan, bottle):
        bottle.check(["sh", "-c", "echo 'no room left for the git config' >&2; exit 7"], user=self.user)


@pytest.mark.parametrize("user", ["0", None], ids=["as-root", "as-agent"])
def test_a_provisioning_failure_stops_the_claimed_run_before_its_command(manifest, user):
    from bottle_core import session
    from bottle_core.manifest import Manifest

    plugins = docker_plugins()
    plugins.pm.register(FailingStep(user), "failing-step")
    spec = BottleSpec(manifest=Manifest.load(manifest), agent="warm", copy_cwd=False, cwd=manifest.parent)
    with warm_pool(manifest, "warm", cwd=manifest.parent) as (slug,):
        plan = session.prepare(plugins, spec)
        ran = []
        with pytest.raises(BottleRuntimeError) as failed:
            with session.running(plugins, plan):
                ran.append(True)
        assert was_claimed(slug), "the run claimed the pooled bottle"
        assert ran == [], "the command ran after its provisioning failed"
        assert "exited 7: no room left for the git config" in failed.value.message
        assert failed.value.message.startswith(f"in bottle {slug}: `sh -c "), failed.value.message
        assert gone(slug)
