"""What the entry point's unit tests share: a free loopback port, and the entry point's wake-up on SIGCHLD."""

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
