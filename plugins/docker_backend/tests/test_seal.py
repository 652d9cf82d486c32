"""The seal: its steps run in the background, a failed one keeps every command from running, files may go in."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from bottle_core.errors import BottleRuntimeError
from bottle_docker.container import DockerBottle
from bottle_docker.seal import Seal


def test_wait_returns_once_every_step_has_ended():
    release, done = threading.Event(), []
    seal = Seal("s1")
    seal.add(lambda: (release.wait(10), done.append("filter")), "set the filter")
    seal.add(lambda: done.append("route"), "remove the route")
    release.set()
    seal.wait()
    assert sorted(done) == ["filter", "route"]


def test_a_failed_step_is_raised_at_every_wait_named_by_what_it_did():
    seal = Seal("s1")
    seal.add(lambda: None, "remove the route")
    seal.add(lambda: (_ for _ in ()).throw(OSError("engine gone")), "set the bundle's packet filter")
    for _ in range(2):
        with pytest.raises(BottleRuntimeError, match="could not set the bundle's packet filter in bottle s1: engine gone"):
            seal.wait()


def test_bottles_own_error_is_raised_as_it_is():
    seal = Seal("s1")
    seal.add(lambda: (_ for _ in ()).throw(BottleRuntimeError("could not remove the agent's default route (no ip)")),
             "remove the route")
    with pytest.raises(BottleRuntimeError, match=r"^could not remove the agent's default route \(no ip\)$"):
        seal.wait()


class RecordingAPI:
    """An engine API that records each call by name and does nothing."""

    def __init__(self):
        self.calls: list[str] = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            return True
        return call


def test_a_bottle_whose_seal_failed_runs_no_command_but_takes_files(tmp_path):
    seal = Seal("s1")
    seal.add(lambda: (_ for _ in ()).throw(BottleRuntimeError("could not set the bundle's packet filter (exit 3)")),
             "set the bundle's packet filter")
    api = RecordingAPI()
    plan = SimpleNamespace(slug="s1", guest=SimpleNamespace(uid=1000, workspace="/work"))
    bottle = DockerBottle(plan, SimpleNamespace(api=api), agent_id="agent",
                          bundle=SimpleNamespace(container_id="bundle"), seal=seal)
    for command in (lambda: bottle.exec(["true"]), lambda: bottle.run(["true"], tty=False),
                    lambda: bottle.exec_bundle(["true"]), bottle.ready):
        with pytest.raises(BottleRuntimeError, match="packet filter"):
            command()
    assert api.calls == []  # the engine was never asked to run anything
    bottle.copy_in(b"", "/")
    assert api.calls == ["put_archive"]
