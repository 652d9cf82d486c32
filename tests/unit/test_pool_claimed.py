"""A claimed pooled docker bottle: its round read from the agent's output, and the raw engine stream it reads."""

from __future__ import annotations

import json
import struct
from types import SimpleNamespace

import pytest

from bottle_core.errors import BottleRuntimeError

pool = pytest.importorskip("bottle_docker.pool")
engine = pytest.importorskip("bottle_docker.engine")


class FakeAPI:
    """Records the calls; the agent's output is given as chunks (cut anywhere)."""

    def __init__(self, chunks: list[bytes], *, stall: bool = False):
        self.chunks, self.stall, self.calls = chunks, stall, []

    def put_archive(self, container, path, data):
        self.calls.append(("put_archive", container, path))
        return True

    def kill(self, container, signal):
        self.calls.append(("kill", container, signal))

    def exec_create(self, container, argv, **kwargs):
        self.calls.append(("exec", container, argv))
        return {"Id": "exec-id"}

    def exec_start(self, exec_id, demux):
        return b"", b""

    def exec_inspect(self, exec_id):
        return {"ExitCode": 0}

    def logs(self, container, **kwargs):
        self.calls.append(("logs", container, kwargs.get("follow")))
        yield from self.chunks
        if self.stall:
            raise TimeoutError


def claimed(plan_factory, chunks, **kwargs):
    api = FakeAPI(chunks, **kwargs)
    plan = plan_factory()
    bottle = pool.ClaimedBottle(plan, SimpleNamespace(api=api), "agent-id", SimpleNamespace(container_id="bundle-id"))
    return bottle, api


ROUND = (b"bottle-agent: pooled\nbottle-provision root exit 0\nbottle-provision agent: bottle-provision step 1\n"
         b"bottle-provision agent: fatal: not a git repo\nbottle-provision agent exit 3\nbottle-provision: end\n")


def test_the_first_round_goes_in_with_one_archive_and_one_signal_and_each_outcome_is_read(plan_factory):
    cut = [ROUND[:30], ROUND[30:95], ROUND[95:]]  # lines cut anywhere by the stream
    bottle, api = claimed(plan_factory, cut)
    uid = str(bottle.plan.guest.uid)
    outcomes = bottle.apply_round(b"archive", ["0", uid])
    assert api.calls == [("put_archive", "agent-id", "/"), ("kill", "agent-id", "SIGUSR1"), ("logs", "agent-id", True)]
    assert outcomes["0"].returncode == 0 and outcomes["0"].stderr == b""
    assert outcomes[uid].returncode == 3
    assert outcomes[uid].stderr == b"bottle-provision step 1\nfatal: not a git repo"


def test_a_later_round_or_another_user_goes_the_exec_way(plan_factory):
    bottle, api = claimed(plan_factory, [ROUND])
    assert bottle.apply_round(b"archive", ["0", "backup"]) is None, "a user neither root nor the agent's"
    assert api.calls == []
    bottle.apply_round(b"archive", ["0"])
    assert bottle.apply_round(b"archive", ["0"]) is None, "the waiting processes take one round"


def test_once_a_command_has_run_in_the_agent_no_round_goes_to_the_waiting_processes(plan_factory):
    bottle, api = claimed(plan_factory, [ROUND])
    bottle.exec(["true"])
    assert bottle.apply_round(b"archive", ["0"]) is None
    assert [call[0] for call in api.calls] == ["exec"]


def test_an_agent_that_ends_before_the_rounds_end_stops_the_run(plan_factory):
    bottle, _ = claimed(plan_factory, [b"bottle-agent: pooled\nbottle-provision root: oops\n"])
    with pytest.raises(BottleRuntimeError, match="stopped during its provisioning; the command was not run: oops"):
        bottle.apply_round(b"archive", ["0"])


def test_a_round_that_never_ends_stops_the_run_within_its_bound(plan_factory):
    bottle, _ = claimed(plan_factory, [b"bottle-agent: pooled\n"], stall=True)
    with pytest.raises(BottleRuntimeError, match=r"did not end within \d+ s; the command was not run"):
        bottle.apply_round(b"archive", ["0"])


def frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


def test_frames_of_a_multiplexed_stream_whatever_the_reads_return():
    data = frame(1, b"out") + frame(2, b"err line\n") + frame(1, b"") + frame(1, b"x" * 70000)
    pieces = iter([data[i:i + 5] for i in range(0, len(data), 5)])
    got = list(engine.frames(lambda _n: next(pieces, b"")))
    assert got == [(1, b"out"), (2, b"err line\n"), (1, b""), (1, b"x" * 70000)]


def test_a_cut_frame_at_the_end_is_dropped():
    data = frame(1, b"whole") + frame(2, b"cut short")[:-3]
    reads = iter([data])
    assert list(engine.frames(lambda _n: next(reads, b""))) == [(1, b"whole")]


def test_filters_go_to_the_engine_as_lists_of_strings():
    assert json.loads(engine._filters({"label": "bottle.slug=a", "dangling": True, "name": ["x", "y"]})) == {
        "label": ["bottle.slug=a"], "dangling": ["true"], "name": ["x", "y"]}
    assert engine._filters(None) is None


def test_the_raw_client_says_which_engines_it_cannot_reach():
    assert engine.raw_supported("unix:///var/run/docker.sock") and engine.raw_supported("tcp://10.0.0.1:2375")
    assert not engine.raw_supported("ssh://user@host")
    with pytest.raises(engine.EngineError, match="ssh://user@host"):
        engine.RawAPI("ssh://user@host")
