"""A bottle ends with its owner: kill -9 of `bottle exec` leaves nothing running, and the logs are kept.

The owner of a bottle is the `bottle` process that launched it. Killed
outright it runs no teardown; its reaper (bottle_core.reaper) sees the
pipe close and removes the bottle. The logs of a bottle that ended so are
kept for the retention like any other, and `bottle gc` ages them out.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

from bottle_core.plan import FINISHED

from .bottles import background_bottle, bottle_cli, left_after, resources_of, write_manifest


def processes_of(module: bytes, matches) -> list[int]:
    """Pids of running ``python -m module`` processes with an argument for which ``matches`` holds."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module in argv and any(matches(arg) for arg in argv):
            found.append(int(entry.name))
    return found


def reapers_of(slug: str) -> list[int]:
    """Pids of reaper processes still running for ``slug``."""
    return processes_of(b"bottle_core.reaper", lambda arg: arg == slug.encode())


def test_a_killed_owner_takes_its_bottle_with_it_and_the_logs_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    agent = f"orphan-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    with background_bottle(manifest, agent, "sleep", "600") as (proc, slug):
        containers, networks = resources_of("bottle.slug", slug)
        assert containers and networks
        proc.kill()  # SIGKILL: no teardown runs in the owner
        proc.wait(timeout=30)
        assert left_after("bottle.slug", slug) == ([], []), "the bottle outlived its owner"
    state = tmp_path / "state" / "bottle" / slug
    assert (state / "plan.json").is_file() and (state / "logs").is_dir()
    assert (state / FINISHED).is_file(), "the reaper marks the bottle ended, so its retention starts"
    # gc keeps the logs of a bottle that ended within the retention ...
    kept = bottle_cli("gc", env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert kept.returncode == 0, kept.stderr
    assert state.is_dir()
    assert bottle_cli("logs", slug, env={"XDG_STATE_HOME": str(tmp_path / "state")}).returncode == 0
    # ... and removes them once they are past it.
    aged = bottle_cli("gc", "--keep-days", "0", env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert aged.returncode == 0, aged.stderr
    assert not state.exists()


def test_a_normal_end_releases_the_reaper_and_stop_keeps_the_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    agent = f"owned-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    ran = bottle_cli("exec", "-m", str(manifest), agent, "--", "echo", "hello", env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert (ran.returncode, ran.stdout) == (0, b"hello\n"), ran.stderr
    assert left_after("bottle.agent", agent) == ([], [])
    [state] = (tmp_path / "state" / "bottle").glob(f"{agent}-*")
    assert not reapers_of(state.name), "the reaper of a bottle that ended normally is gone with it"
    # `bottle stop` of a running bottle removes it and keeps its logs.
    with background_bottle(manifest, agent, "sleep", "600") as (proc, slug):
        assert bottle_cli("stop", slug).returncode == 0
        assert proc.wait(timeout=60) != 0
    assert (tmp_path / "state" / "bottle" / slug / "logs").is_dir()
    assert (tmp_path / "state" / "bottle" / slug / FINISHED).is_file()


def removers_of(prefix: str) -> list[int]:
    """Pids of the processes removing a bottle whose slug starts with ``prefix`` (see bottle_docker.removal)."""
    return processes_of(b"bottle_docker.removal", lambda arg: arg.startswith(prefix.encode()))


def test_a_removal_cut_short_is_finished_by_gc(tmp_path, monkeypatch):
    """`bottle exec` returns before its bottle is removed; should that removal be killed, gc finishes it."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    agent = f"cut-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    killed: list[int] = []
    done = threading.Event()

    def cut_short() -> None:  # kill the removal the moment it starts, before it has removed anything
        deadline = time.monotonic() + 600
        while not done.is_set() and time.monotonic() < deadline:
            for pid in removers_of(f"{agent}-"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=cut_short, daemon=True)
    watcher.start()
    ran = bottle_cli("exec", "-m", str(manifest), agent, "--", "echo", "hello")
    watcher.join(30)
    done.set()
    assert (ran.returncode, ran.stdout) == (0, b"hello\n"), ran.stderr
    assert killed, "no removal process was seen"
    containers, networks = resources_of("bottle.agent", agent)
    assert containers and networks, "the removal was not cut short"
    gc = bottle_cli("gc")
    assert gc.returncode == 0, gc.stderr
    assert left_after("bottle.agent", agent) == ([], [])
