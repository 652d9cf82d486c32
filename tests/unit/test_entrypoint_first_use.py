"""Daemons started on their first connection: the entry point listens for them, starts them when a client
comes and hands the listening socket over; one that cannot start refuses that client and ends the loop.

Real processes on loopback ports, the entry point's own :class:`~bottle_core.bundle.image.entrypoint.Loop`;
no engine. The daemon here is a small ``socketserver`` server on ``readiness.server``, as the git gate and
the supervisor are.
"""

from __future__ import annotations

import socket
import sys

import pytest

from bottle_core.bundle.image import entrypoint

from .daemon_helpers import children, free_port, step_until, stopped  # noqa: F401 (children: a fixture)

BOUND = 60.0  # a bound on each wait, not a budget

#: Answers each line with the pid that served it.
SERVER = """
import os, socketserver
from bottle_core.bundle.image import readiness

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"%d %s" % (os.getpid(), line))

readiness.server(socketserver.ThreadingTCPServer, ("127.0.0.1", 1), Echo).serve_forever()
"""


@pytest.fixture
def first_use():
    """A daemon of first use on a free loopback port (``argv`` filled in by each test), stopped afterwards."""
    daemon = entrypoint.Daemon("gate-like", [], ("127.0.0.1", free_port()), on_first_connection=True)
    yield daemon
    stopped(daemon)


def test_it_is_ready_at_once_starts_on_the_first_connection_and_serves_that_client(first_use, children, capsys):
    first_use.argv = [sys.executable, "-c", SERVER]
    first_use.listen()
    loop = entrypoint.Loop([first_use], children)
    assert loop.announce_ready(BOUND)
    assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    assert first_use.process is None, "nothing runs before the first client"
    with socket.create_connection(first_use.address, timeout=BOUND) as client:
        client.sendall(b"first\n")
        step_until(loop, lambda: first_use.process is not None)
        served = client.makefile("rb").readline()
    assert served == b"%d first\n" % first_use.process.pid, "the waiting connection is the daemon's"
    with socket.create_connection(first_use.address, timeout=BOUND) as client:
        client.sendall(b"second\n")
        assert client.makefile("rb").readline() == b"%d second\n" % first_use.process.pid
    assert first_use.listener is None, "the entry point holds no copy of the port once handed over"
    assert loop.ended is None


def test_one_that_cannot_start_refuses_its_client_and_ends_the_loop(first_use, children):
    first_use.argv = [sys.executable, "-c", "raise SystemExit(3)"]
    first_use.listen()
    loop = entrypoint.Loop([first_use], children)
    with socket.create_connection(first_use.address, timeout=BOUND) as client:
        client.sendall(b"hello\n")
        step_until(loop, lambda: loop.ended is not None)
        try:
            answer = client.recv(64)
        except ConnectionResetError:
            answer = b""
    assert answer == b"", "no answer: the connection was closed unserved"
    assert loop.ended is first_use and first_use.process.returncode == 3
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(first_use.address, timeout=BOUND)


def test_stopping_closes_the_port_of_one_never_started(first_use):
    first_use.argv = [sys.executable, "-c", SERVER]
    first_use.listen()
    socket.create_connection(first_use.address, timeout=BOUND).close()  # listening: the connection is taken
    entrypoint.stop_all([first_use])
    assert first_use.process is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(first_use.address, timeout=BOUND)
