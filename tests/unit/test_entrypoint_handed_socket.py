"""A daemon handed its listening socket at its start, as the proxy is: its address listens from the start, the
bundle is ready once it says its CA is written, and a client that connects before it serves waits and is
served once the entry point tells it the bundle is ready; one that ends first refuses its clients.

Real processes on loopback ports, the entry point's own :class:`~bottle_core.bundle.image.entrypoint.Loop`;
no engine. The daemon here stands in for the proxy with the same pipes: it writes its "CA", says
``readiness.READY``, waits for ``readiness.SERVE`` and then accepts on the handed socket (mitmproxy's part,
``proxy_serve.py``, is tried in the integration tests).
"""

from __future__ import annotations

import socket
import sys

import pytest

from bottle_core.bundle.image import daemons, entrypoint, proxy_start

from .daemon_helpers import children, free_port, step_until, stopped  # noqa: F401 (children: a fixture)

BOUND = 60.0  # a bound on each wait, not a budget

#: Writes its CA (argv[1]), says so, then serves the handed socket once told to (each line answered with its pid);
#: exits 4 when the pipe closes unwritten, 3 at once when argv[2] says it fails as it starts.
PROXY_LIKE = """
import os, sys, time
from pathlib import Path
from bottle_core.bundle.image import readiness

if sys.argv[2:] == ["--say-only"]:
    readiness.tell(readiness.READY)
    time.sleep(120)
Path(sys.argv[1]).write_text("a CA")
readiness.tell(readiness.READY)
listener = readiness.handed_socket()
if sys.argv[2:] == ["--fail"]:
    raise SystemExit(3)
if os.read(int(os.environ[readiness.SERVE_FD]), 1) != readiness.SERVE:
    raise SystemExit(4)
while True:
    client, _ = listener.accept()
    with client:
        client.sendall(b"%d %s" % (os.getpid(), client.makefile("rb").readline()))
"""


@pytest.fixture
def proxy_like(tmp_path):
    """A daemon handed its socket at its start, on a free loopback port, ready once its CA file exists."""
    ca = tmp_path / "ca.pem"
    daemon = entrypoint.Daemon("proxy-like", [sys.executable, "-c", PROXY_LIKE, str(ca)], ("127.0.0.1", free_port()),
                               ready_file=ca, handed_socket=True)
    yield daemon
    stopped(daemon)


def unanswered(client: socket.socket) -> bool:
    """Whether the connection was closed (or reset) without a byte of answer."""
    try:
        return client.recv(64) == b""
    except ConnectionResetError:
        return True


def test_a_client_before_the_bundle_is_ready_waits_and_is_served_once_it_is(proxy_like, children, capsys):
    proxy_like.listen()
    proxy_like.start()
    assert proxy_like.listener is None, "the entry point holds no copy of the port once handed over"
    # Connected before the ready line: the daemon has not accepted anything yet, the kernel holds the client.
    with socket.create_connection(proxy_like.address, timeout=BOUND) as client:
        client.sendall(b"early\n")
        loop = entrypoint.Loop([proxy_like], children)
        assert loop.announce_ready(BOUND)
        assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
        answer = client.makefile("rb").readline()
    assert answer == b"%d early\n" % proxy_like.process.pid, "the waiting client was served by the daemon"
    assert proxy_like.ready_file.exists()
    with socket.create_connection(proxy_like.address, timeout=BOUND) as client:
        client.sendall(b"later\n")
        assert client.makefile("rb").readline() == b"%d later\n" % proxy_like.process.pid
    assert loop.ended is None


def test_it_is_not_ready_on_its_word_alone_without_its_ca(proxy_like, capsys):
    """Said, but its CA is not there: never announced (a bound deadline, no claim of readiness)."""
    proxy_like.argv = [*proxy_like.argv, "--say-only"]
    proxy_like.listen()
    proxy_like.start()
    assert not entrypoint.announce_ready([proxy_like], timeout=1.0)
    captured = capsys.readouterr()
    assert entrypoint.READY_LINE not in captured.out
    assert f"never listened: proxy-like on 127.0.0.1:{proxy_like.address[1]}" in captured.err


def test_one_that_ends_as_it_starts_resets_the_waiting_client_and_ends_the_loop(proxy_like, children):
    proxy_like.argv = [*proxy_like.argv, "--fail"]
    proxy_like.listen()
    proxy_like.start()
    with socket.create_connection(proxy_like.address, timeout=BOUND) as client:
        client.sendall(b"early\n")
        loop = entrypoint.Loop([proxy_like], children)
        step_until(loop, lambda: loop.ended is not None)
        assert unanswered(client), "the waiting client was never served"
    assert loop.ended is proxy_like and proxy_like.process.returncode == 3
    assert not loop.announce_ready(BOUND), "a daemon that ended is never announced"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy_like.address, timeout=BOUND)


def test_a_bundle_that_stops_before_it_is_ready_never_lets_it_serve(proxy_like, children):
    """Its serve pipe closed unwritten (the entry point stopping): it ends without serving the waiting client."""
    proxy_like.listen()
    proxy_like.start()
    with socket.create_connection(proxy_like.address, timeout=BOUND) as client:
        client.sendall(b"early\n")
        proxy_like.let_serve(False)
        assert proxy_like.process.wait(timeout=BOUND) == 4
        assert unanswered(client)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy_like.address, timeout=BOUND)


def test_it_is_not_told_to_serve_while_its_upstream_does_not_listen(proxy_like, children, capsys):
    """Its upstream (here squid-like: it never says ``READY=1``) not listening: the bundle is not ready, the daemon
    is never told to serve, and the bundle's end leaves the waiting client unanswered."""
    upstream = entrypoint.Daemon("squid-like", [sys.executable, "-c", "import time; time.sleep(120)"],
                                 ("127.0.0.1", free_port()), says=daemons.SD_NOTIFY)
    proxy_like.listen()
    proxy_like.start()
    upstream.start()
    try:
        with socket.create_connection(proxy_like.address, timeout=BOUND) as client:
            client.sendall(b"early\n")
            assert not entrypoint.Loop([proxy_like, upstream], children).announce_ready(1.0)
            assert "never listened: squid-like" in capsys.readouterr().err
            assert proxy_like.serve is not None, "told to serve before its upstream listened"
            entrypoint.stop_all([proxy_like])
            assert unanswered(client)
    finally:
        upstream.process.kill()
        upstream.process.wait()


def test_the_proxy_is_handed_its_socket_at_once_and_is_ready_with_its_ca():
    config = {"proxy": {"listen_host": "10.0.0.2", "port": 8080}, "egress": {"port": 3128, "allow": []},
              "git_gate": {"port": 9418}}
    (proxy,) = [row for row in daemons.running(config) if row.name == "proxy"]
    assert proxy.handed_socket and not proxy.on_first_connection
    assert proxy.ready_file == proxy_start.CA_CERT, "mitmproxy's own start is not waited for"
    assert all(row.handed_socket for row in daemons.running(config) if row.on_first_connection)


def test_a_daemon_started_on_first_connection_must_be_handed_its_socket():
    with pytest.raises(ValueError, match="daemon lazy: started on first connection"):
        daemons.Daemon("lazy", user=lambda c: "nobody", argv=lambda c: [], address=lambda c: ("127.0.0.1", 1),
                       on_first_connection=True)
