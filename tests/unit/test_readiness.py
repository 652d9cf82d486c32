"""The bundle's daemons say when they listen, wait for a claim's go, and end unread without it: no engine.

The daemon here is the scripted model server (a real daemon of the bundle) on a loopback port, run as the
entry point runs each Python daemon (``python -m bottle_core.bundle.image.readiness bottle_core.bundle.image.MODULE ...``).
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys

import pytest

from bottle_core.bundle.image import daemons, entrypoint, readiness

from .daemon_helpers import BOUND, free_port, stopped


@pytest.fixture
def model_daemon(tmp_path):
    """A Daemon of the entry point: the model server, on a free loopback port."""
    script = tmp_path / "script.json"
    script.write_text("[]")
    port = free_port()
    argv = [sys.executable, "-m", "bottle_core.bundle.image.readiness",
            "bottle_core.bundle.image.model_server", "--script", str(script),
            "--listen", "127.0.0.1", "--port", str(port)]
    daemon = entrypoint.Daemon("model-script", argv, ("127.0.0.1", port))
    yield daemon
    if daemon.process and daemon.process.poll() is None:
        daemon.process.kill()
        daemon.process.wait()
    daemon.release(go=False)


def said(fd: int) -> bytes:
    """The next words on a readiness pipe (empty: it closed), within the bound."""
    assert select.select([fd], [], [], BOUND)[0], "the daemon said nothing"
    return os.read(fd, 64)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_a_daemon_says_when_it_listens_and_the_entry_point_announces_ready(model_daemon, capsys):
    model_daemon.start()
    assert entrypoint.announce_ready([model_daemon], timeout=BOUND)
    assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    assert answers(model_daemon.address[1])


def test_a_daemon_started_ahead_waits_for_its_go_before_it_reads_or_listens(model_daemon, capsys):
    model_daemon.start(ahead=True)
    assert said(model_daemon.channel) == readiness.WAITING
    assert not answers(model_daemon.address[1]), "waiting: nothing listens before the go"
    model_daemon.release(go=True)
    assert entrypoint.announce_ready([model_daemon], timeout=BOUND)
    assert answers(model_daemon.address[1])


def test_a_daemon_whose_go_never_comes_ends_unread(model_daemon):
    model_daemon.start(ahead=True)
    assert said(model_daemon.channel) == readiness.WAITING
    model_daemon.release(go=False)
    assert model_daemon.process.wait(timeout=BOUND) == 0
    assert said(model_daemon.channel) == b"", "its pipe closes: the entry point sees it gone"
    assert not answers(model_daemon.address[1])


def test_a_daemon_that_ends_before_it_listens_is_reported_not_waited_out(capsys):
    daemon = entrypoint.Daemon("broken", [sys.executable, "-c", "raise SystemExit(3)"], ("127.0.0.1", free_port()))
    daemon.start()
    assert not entrypoint.announce_ready([daemon], timeout=BOUND)
    daemon.process.wait(timeout=BOUND)
    captured = capsys.readouterr()
    assert entrypoint.READY_LINE not in captured.out
    assert "never listened: broken on 127.0.0.1" in captured.err


def notify_daemon(name: str, code: str) -> entrypoint.Daemon:
    """A started Daemon that says it listens as squid does (systemd's notify protocol), on a free loopback port:
    a Python process running ``code``, with ``PORT`` in it standing for that port."""
    port = free_port()
    daemon = entrypoint.Daemon(name, [sys.executable, "-c", code.replace("PORT", str(port))], ("127.0.0.1", port),
                               says=daemons.SD_NOTIFY)
    daemon.start()
    return daemon


def test_a_daemon_that_speaks_systemds_notify_protocol_is_heard_on_its_socket(capsys):
    """As squid says it listens: ``READY=1`` on the abstract socket named by ``NOTIFY_SOCKET``."""
    daemon = notify_daemon("squid-like", "import os, socket, time; s = socket.socket(); "
                           "s.bind(('127.0.0.1', PORT)); s.listen(); "
                           "n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                           "n.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'].replace('@', chr(0), 1)); time.sleep(60)")
    try:
        assert entrypoint.announce_ready([daemon], timeout=BOUND)
        assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    finally:
        stopped(daemon)


def test_a_notify_daemon_whose_word_is_late_is_found_listening(capsys):
    """Squid's READY=1 has come minutes after its port listened, with many bundles starting at once: its port
    in the socket table is enough, looked for every QUIET_LOOK seconds."""
    daemon = notify_daemon("mute", "import socket, time; s = socket.socket(); "
                                   "s.bind(('127.0.0.1', PORT)); s.listen(); time.sleep(60)")
    try:
        assert entrypoint.announce_ready([daemon], timeout=BOUND)
        assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    finally:
        stopped(daemon)


def test_a_notify_daemon_that_neither_says_nor_listens_is_not_announced(capsys):
    """No word and no port: a bound deadline, no claim of readiness."""
    daemon = notify_daemon("mute", "import time; time.sleep(60)")
    try:
        assert not entrypoint.announce_ready([daemon], timeout=1.0)
        assert "never listened: mute on 127.0.0.1" in capsys.readouterr().err
    finally:
        stopped(daemon)


def test_without_pipes_a_daemon_neither_says_nor_waits(tmp_path):
    """Run by hand (no entry point): the daemon serves at once."""
    script = tmp_path / "script.json"
    script.write_text("[]")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (readiness.READY_FD, readiness.GO_FD)}
    process = subprocess.Popen([sys.executable, "-m", "bottle_core.bundle.image.readiness",
            "bottle_core.bundle.image.model_server",
                                "--script", str(script), "--listen", "127.0.0.1", "--port", str(port)],
                               env=env, stderr=subprocess.PIPE)
    try:
        assert b"model server listening" in process.stderr.readline()
        assert answers(port)
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def waits(monkeypatch) -> list[float | None]:
    """The timeout of every ``select`` the loop makes (each returns at once, nothing ready)."""
    recorded: list[float | None] = []

    def select_recorded(read, write, error, timeout=None):
        recorded.append(timeout)
        return [], [], []

    monkeypatch.setattr(entrypoint.select, "select", select_recorded)
    return recorded


def test_a_daemon_that_turns_ready_between_two_looks_is_not_waited_for_until_the_deadline(monkeypatch, capsys,
                                                                                          waits):
    """A daemon that has said it listens and whose socket shows up a moment later (squid says READY=1 first):
    the loop looks again every LOOK seconds, and never waits longer once every daemon has said so."""
    daemon = entrypoint.Daemon("squid-like", ["true"], ("127.0.0.1", free_port()), says=daemons.SD_NOTIFY)
    daemon.said = entrypoint.NOTIFY_READY
    looks = iter([False, True])  # not ready at the first look, ready from the next one on
    monkeypatch.setattr(daemon, "ready", lambda: next(looks, True))
    assert entrypoint.announce_ready([daemon], timeout=BOUND)
    assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    assert all(wait is not None and wait <= entrypoint.LOOK for wait in waits), waits


def test_a_daemon_ready_with_no_word_said_is_found_within_a_quiet_look(monkeypatch, capsys, waits):
    """A wake-up missed (ready, with nothing said on any channel) costs a look, never the deadline: every wait of
    the loop is bounded by QUIET_LOOK."""
    daemon = entrypoint.Daemon("silent", ["true"], ("127.0.0.1", free_port()))
    looks = iter([False, False, True])  # ready at the third look, without a word
    monkeypatch.setattr(daemon, "ready", lambda: next(looks, True))
    assert entrypoint.announce_ready([daemon], timeout=BOUND)
    assert capsys.readouterr().out == f"{entrypoint.READY_LINE}\n"
    assert waits and all(wait is not None and wait <= entrypoint.QUIET_LOOK for wait in waits), waits
