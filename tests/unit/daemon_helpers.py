"""What the entry point's unit tests share: a free loopback port, the entry point's wake-up on SIGCHLD, its loop
stepped until something holds, a daemon stopped."""

from __future__ import annotations

import signal
import socket

import pytest
from bottle_core.bundle.image import entrypoint


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def children():
    """The entry point's wake-up on SIGCHLD, undone afterwards."""
    fd = entrypoint.watch_children()
    yield fd
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


BOUND = 60.0  # a bound on each wait, not a budget


def step_until(loop: entrypoint.Loop, done) -> None:
    """Step the entry point's loop until ``done()`` (at most 100 steps, each bounded)."""
    for _ in range(100):
        if done():
            return
        assert loop.step(BOUND), "nothing happened within the bound"
    raise AssertionError("never happened")


def stopped(daemon: entrypoint.Daemon) -> None:
    """End a test's daemon if it still runs, and close what the entry point holds for it."""
    if daemon.process and daemon.process.poll() is None:
        daemon.process.kill()
        daemon.process.wait()
    entrypoint.stop_all([daemon])
