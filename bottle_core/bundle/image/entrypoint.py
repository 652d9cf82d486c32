"""The bundle's entry point: start every daemon, say when all listen, stop if one dies.

The daemons read their settings from the JSON file named by
``BOTTLE_BUNDLE_CONFIG`` (written by ``bottle_core.bundle.contract``): the
TLS-inspecting proxy (mitmdump with ``proxy_addon.py``, started by
``proxy_start.py``) and the git gate (``git_gate.py``), both on the
bottle-side address; the egress stage (squid, ``egress_stage.py``) on
loopback, the only process that connects out; and when asked for, the
supervisor (``supervisor.py``) and the scripted model (``model_server.py``,
on loopback). Each daemon is a child process, started as its own non-root
user with no capability left (the entry point itself keeps only what it
needs for that, when it starts as root: the proxy runs as ``bundle``, the
egress stage as ``egress``, the gate as the owner of the host repositories
it pushes to, so nothing on the host changes owner or mode, or as ``gate``
when it has none).

The proxy starts first (it makes the CA the launch waits for), the egress
stage beside it. The entry point binds the proxy's address itself and hands
the listening socket to the proxy as it starts it, so the proxy's address
listens from the start: a client that connects while mitmproxy imports and
loads its addons (about a second, the longest part of a bundle's start)
waits in the kernel's backlog, and is served once the policy is in force;
the proxy tells the entry point on a pipe of its own (``readiness.py``) as
soon as its CA is written. The scripted model says on such a pipe when it
listens, squid by its own ``READY=1`` (systemd's notify protocol) on a socket
of its own, or by its port in the kernel's socket table, looked at every
quarter of a second while nothing is said. The git gate and the supervisor are started on their first
connection: the entry point listens on their addresses from the start and,
when a client first connects, starts the daemon with the listening socket
handed over, so a bottle whose agent never pushes or is not supervised pays
nothing for them. One ``select`` loop (:class:`Loop`) hears all of it, and
each daemon's end (SIGCHLD). ``bottle-bundle: ready`` is printed once on
stdout when every daemon's address listens (the proxy's: its CA written
too; squid's: its word heard and its port seen), and the proxy is then
told it may serve (``readiness.SERVE``: its upstream, squid, listens). When
any daemon exits the others are stopped and the bundle exits non-zero, so
the bottle fails visibly instead of limping on: a daemon handed its socket
that cannot start, or whose start fails, refuses the connections waiting for
it (its port closes with it), and the bundle ends. A bundle started for a
warm pool starts its proxy ahead of the claim, waiting for it
(``pooled.py``).

The daemons: the proxy, in upstream mode: every server connection it opens
goes through the egress stage, which resolves the name and refuses private
and host addresses; the git gate; the supervisor (unless supervision is off)
judging the agent's tool calls; and, for a rehearsal with ``--model-script``,
the scripted model server on loopback, to which the proxy sends every request
for the model host (through the egress stage, which lets the proxy reach that
one loopback port and no other). Each daemon runs as its own user so that the
packet filter (``netfilter.py``, set from outside the bundle) can let only
the egress stage's user connect out.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import daemons as daemon_table, egress_stage, pooled, readiness
from .accounts import account, uids
from .daemons import EGRESS_DIR, PIPE, SD_NOTIFY, SQUID_CONF

READY_LINE = "bottle-bundle: ready"
#: Said first when told to stop (SIGTERM): whoever files the output may stop reading there.
STOPPED_LINE = "bottle-bundle: stopped"
TCP_LISTEN = "0A"  # a socket's state in /proc/net/tcp
#: A bound, not a budget: a bundle starts in a second or two, but many bundles starting at once on a
#: small host share its cores (sixteen at once on two cores take about a minute).
READY_TIMEOUT = 150.0
#: How often a daemon that said it listens, but is not in the socket table yet, is looked for again.
LOOK = 0.02
#: How often the daemons are looked at again while none has said anything new.
QUIET_LOOK = 0.25
#: Connections a daemon started on first use may have waiting while it starts.
BACKLOG = 64
#: What squid says on its notify socket once its port listens (systemd's notify protocol).
NOTIFY_READY = b"READY=1"


@dataclass
class Daemon:
    """One child process of the bundle and the address where it accepts connections once up."""

    name: str
    argv: list[str]
    address: tuple[str, int]
    user: tuple[int, int] | None = None
    process: subprocess.Popen | None = None
    ready_file: Path | None = None  # when set, the daemon is ready only once this file exists too
    says: str = PIPE  # how it says it listens (daemons.PIPE or daemons.SD_NOTIFY)
    handed_socket: bool = False  # its address bound here, the listening socket handed over as it starts
    on_first_connection: bool = False  # started when its listening socket (held here until then) is first readable
    said: bytes = b""  # what it said so far
    channel: int | None = None  # where it says it: the read end of its readiness pipe, or its notify socket
    go: int | None = None  # the write end of its go pipe, when started ahead of a claim
    serve: int | None = None  # the write end of its serve pipe: started at once with its socket, told when to serve
    listener: socket.socket | None = None  # its listening socket, held here until it starts
    notify: socket.socket | None = None  # its notify socket (squid's)
    gone: bool = False  # its pipe closed: it ended, or is ending

    def listen(self) -> None:
        """Listen on its address now, for it: :meth:`start` hands the socket over (at once, or on first use)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socketserver's HTTP servers do
        listener.bind(self.address)
        listener.listen(BACKLOG)
        self.listener = listener

    def said_ready(self) -> bool:
        """Whether it said it listens (the proxy: that its CA is written; one started on first use listens from
        the start: here, then itself)."""
        if self.on_first_connection:
            return True
        return (NOTIFY_READY if self.says == SD_NOTIFY else readiness.READY) in self.said

    def ready(self) -> bool:
        """Seen listening: its socket bound here (handed over), or said so and seen in the kernel's socket table;
        and its ready file there when it has one (the proxy's CA, which it says it wrote)."""
        if self.on_first_connection:
            return self.listener is not None or self.process is not None
        if self.handed_socket:
            listens = self.listener is not None or self.process is not None
        elif self.says == SD_NOTIFY:
            # Its READY=1 wakes the loop; its port in the socket table is enough (with many bundles starting at
            # once a bundle has waited 150 s with squid's port listening and no word from it).
            listens = listening(self.address)
        else:
            listens = self.said_ready() and listening(self.address)
        return listens and (self.ready_file is None or self.ready_file.exists())

    def ended(self) -> bool:
        """Whether it exited (reaped here: only the entry point's loop asks)."""
        return self.process is not None and self.process.poll() is not None

    def start(self, *, ahead: bool = False) -> None:
        """Start it as its user: with its listening socket (started on first use), its notify socket (squid),
        or its readiness pipe (and, ``ahead`` of a claim, its go pipe)."""
        env, passed = dict(os.environ), []
        if self.listener is not None:
            env[readiness.LISTEN_FD] = str(self.listener.fileno())
            passed.append(self.listener.fileno())
        elif self.says == SD_NOTIFY:
            # An abstract socket: nothing on disk; its random name is known to the daemon's user alone.
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            name = f"bottle-{self.name}-{os.urandom(8).hex()}"
            self.notify.bind(f"\0{name}")
            self.channel = self.notify.fileno()
            env["NOTIFY_SOCKET"] = f"@{name}"
        if self.says == PIPE and not self.on_first_connection or ahead:
            self.channel, ready_write = os.pipe()
            env[readiness.READY_FD] = str(ready_write)
            passed.append(ready_write)
        if self.listener is not None and not self.on_first_connection:  # clients may wait before the bundle is ready
            serve_read, self.serve = os.pipe()
            env[readiness.SERVE_FD] = str(serve_read)
            passed.append(serve_read)
        if ahead:
            go_read, self.go = os.pipe()
            env[readiness.GO_FD] = str(go_read)
            passed.append(go_read)
        self.process = subprocess.Popen(as_user(self.argv, self.user), env=env, pass_fds=passed)
        if self.listener is not None:  # the daemon's alone now: when it ends, its port refuses connections
            passed.remove(self.listener.fileno())
            self.listener.close()
            self.listener = None
        for fd in passed:  # its copies alone: a pipe closes when the daemon ends
            os.close(fd)

    def hear(self) -> None:
        """Read what it said (a closed pipe: it is ending, and is no longer listened to)."""
        said = os.read(self.channel, 64)
        self.said += said
        if not said:
            self.gone = True
            self.stop_hearing()

    def stop_hearing(self) -> None:
        """Close what it says things on: it said what mattered, or it ended."""
        if self.notify is not None:
            self.notify.close()
        elif self.channel is not None:
            os.close(self.channel)
        self.channel, self.notify = None, None

    def let_serve(self, serve: bool) -> None:
        """Started at once with its socket: tell it the bundle is ready (``serve``), or close its pipe unwritten
        (the bundle stops: it ends without serving)."""
        self.serve = _last_word(self.serve, readiness.SERVE if serve else None)

    def release(self, go: bool) -> None:
        """Started ahead: let it read the run's configuration and serve (``go``), or end unread."""
        self.go = _last_word(self.go, readiness.GO if go else None)


def _last_word(pipe: int | None, word: bytes | None) -> None:
    """Write ``word`` (None: nothing) on a daemon's pipe, then close it; its end is ``None`` from then on."""
    if pipe is not None:
        try:
            if word is not None:
                os.write(pipe, word)
        except BrokenPipeError:
            pass  # it ended meanwhile: its exit ends the bundle, reported as any daemon's
        finally:
            os.close(pipe)


def daemons(config: dict) -> list[Daemon]:
    """The daemons this bundle runs (the rows of :data:`daemons.TABLE` it enables), each as its own user."""
    rows = daemon_table.running(config)
    uids(config, rows)  # two daemons of different users never share a uid
    return [Daemon(row.name, row.argv(config), row.address(config), account(row.user(config)),
                   ready_file=row.ready_file, says=row.says, handed_socket=row.handed_socket,
                   on_first_connection=row.on_first_connection)
            for row in rows]


def prepare_egress_stage(config: dict) -> None:
    """The egress stage's configuration, written as root where its user can read but not change it."""
    egress_stage.write_error_pages(EGRESS_DIR / "errors")
    SQUID_CONF.write_text(egress_stage.squid_config(config["egress"], EGRESS_DIR / "errors",
                                                                     script_port(config)))


def script_port(config: dict) -> int | None:
    """The scripted model's loopback port, when this is a rehearsal."""
    scripted = config.get("scripted_model")
    return int(scripted["port"]) if scripted else None


def as_user(argv: list[str], user: tuple[int, int] | None) -> list[str]:
    """``argv`` run as ``user`` with no capability at all (bounding set emptied), when this process is root."""
    if user is None or os.geteuid() != 0:
        return argv
    uid, gid = user
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--", *argv]


def listening(address: tuple[str, int], tables: tuple[str, ...] = ("/proc/net/tcp",)) -> bool:
    """Whether a socket listens on ``address`` (or on all addresses at its port).

    Read from the kernel's socket table rather than by connecting: the packet
    filter lets only the daemons' users reach each other, not this entry
    point (which may share its uid with the git gate's).
    """
    host, port = address
    wanted = {f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}" for ip in (host, "0.0.0.0")}
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(fields[1] in wanted and fields[3] == TCP_LISTEN for fields in map(str.split, lines)):
            return True
    return False


def watch_children() -> int:
    """A fd that turns readable whenever a signal comes, SIGCHLD above all (a daemon ended): the loop's wake-up."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wake-up fd hears it; reaped by Popen
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    return wake_read


class Loop:
    """The entry point's one ``select``: each daemon's word that it listens, the first connection to each daemon
    started on first use, and ``children`` (:func:`watch_children`), which wakes it when a daemon ends."""

    def __init__(self, running: list[Daemon], children: int | None = None):
        self.running, self.children = running, children
        self.ended: Daemon | None = None

    def step(self, timeout: float | None) -> bool:
        """Wait at most ``timeout`` seconds (``None``: no bound) for something to happen, and handle it;
        ``False`` when nothing did."""
        listeners = {d.listener.fileno(): d for d in self.running if d.listener is not None}
        speakers = {d.channel: d for d in self.running if d.channel is not None and not d.ready()}
        wake = [self.children] if self.children is not None else []
        readable = select.select([*listeners, *speakers, *wake], [], [], timeout)[0]
        for fd in readable:
            if fd in listeners:
                listeners[fd].start()  # the waiting connection is the daemon's to accept
            elif fd in speakers:
                speakers[fd].hear()
            else:
                os.read(fd, 512)
        self.ended = self.ended or next((d for d in self.running if d.ended()), None)
        return bool(readable)

    def waiting(self) -> list[Daemon]:
        return [d for d in self.running if not d.ready()]

    def announce_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Print the ready line once every daemon listens; never claim readiness that was not seen.

        Each daemon says when it listens (on its pipe, or squid on its notify socket) and is then checked once
        in the socket table (looked for again every :data:`LOOK` seconds, should it not be there yet); one
        started on first use listens from the start. A daemon that ends first is reported, not waited out.
        """
        deadline = time.monotonic() + timeout
        while True:
            # One look per round: a daemon that turns ready between two looks would leave the second one
            # finding no one who said so, and the wait below would then run to the deadline.
            waiting = self.waiting()
            left = deadline - time.monotonic()
            if not waiting or self.ended is not None or any(d.gone for d in waiting) or left <= 0:
                break
            look_again = any(d.said_ready() for d in waiting)
            # Never a long wait on a word alone: a wake-up missed (a word, or a port that shows up later) costs
            # at most a quarter of a second, not the deadline.
            self.step(min(left, LOOK if look_again else QUIET_LOOK))
        waiting = self.waiting()
        if waiting:
            names = ", ".join(f"{d.name} on {d.address[0]}:{d.address[1]}"
                              + (f" (exited {d.process.returncode})" if d.ended() else "") for d in waiting)
            print(f"bottle-bundle: never listened: {names}", file=sys.stderr, flush=True)
            return False
        if self.ended is not None:
            return False  # never ready: its end is reported, and ends the bundle
        for daemon in self.running:
            daemon.stop_hearing()  # each said what mattered; its end is heard as SIGCHLD
            daemon.let_serve(True)  # what it relays to listens now
        print(READY_LINE, flush=True)
        return True

    def until_one_ends(self) -> Daemon:
        """Start each daemon of first use as its first client comes, until one daemon ends; that one."""
        while self.ended is None:
            self.step(None)
        return self.ended


def announce_ready(running: list[Daemon], timeout: float = READY_TIMEOUT) -> bool:
    """:meth:`Loop.announce_ready` for ``running`` alone."""
    return Loop(running).announce_ready(timeout)


def stop_all(running: list[Daemon]) -> None:
    """Stop the daemons this process may signal (one of another user ends with the bundle); close the ports
    of those never started, so that their clients are refused at once."""
    for daemon in running:
        daemon.release(go=False)
        daemon.let_serve(False)
        if daemon.listener is not None:
            daemon.listener.close()
            daemon.listener = None
        if daemon.process and daemon.process.poll() is None:
            try:
                daemon.process.terminate()
            except PermissionError:
                pass  # another user's daemon (no CAP_KILL here): it ends with the bundle
    for daemon in running:
        if daemon.process:
            try:
                daemon.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    daemon.process.kill()
                except PermissionError:
                    pass


def stop_on_term(running: list[Daemon]) -> None:
    """On SIGTERM: say :data:`STOPPED_LINE` (in one write: never inside another print), then stop."""
    def stop(*_) -> None:
        os.write(sys.stdout.fileno(), f"{STOPPED_LINE}\n".encode())
        stop_all(running)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def read_config() -> dict:
    return json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))


def start_ahead(config: dict) -> list[Daemon]:
    """A pooled bundle (see pooled.py): start the daemons marked ``ahead``, each waiting for its go; say
    ``pooled`` once all wait; return them once a run has claimed the bottle and its configuration is in place."""
    wake = pooled.listen_for_claim()
    ahead = [d for d, row in zip(daemons(config), daemon_table.running(config)) if row.ahead]
    for daemon in ahead:
        if daemon.handed_socket:
            listen_for(daemon)
        daemon.start(ahead=True)
    stop_on_term(ahead)
    watched = {d.channel: d.name for d in ahead}
    pooled.await_waiting(watched, READY_TIMEOUT)
    pooled.wait_for_claim(wake, watched)
    return ahead


def take_over(ahead: list[Daemon], before: dict, after: dict) -> dict[str, Daemon]:
    """The daemons started ahead (from the pooled configuration ``before``) that serve the claiming run's
    (``after``) as they are: same command line and user, still run; the others end unread. A proxy that does
    not fit stops the bundle: its inputs are fixed at launch."""
    wanted = {d.name: d for d in daemons(after)}
    kept = {}
    for daemon in ahead:
        fits = daemon.name in wanted and (wanted[daemon.name].argv, wanted[daemon.name].user) == \
            (daemon.argv, daemon.user)
        if daemon.name == "proxy" and not (fits and pooled.proxy_inputs(after) == pooled.proxy_inputs(before)):
            print("bottle-bundle: the claim changed the proxy's address, ports or upstream CA; stopping",
                  file=sys.stderr, flush=True)
            stop_all(ahead)
            sys.exit(1)
        if fits:
            kept[daemon.name] = daemon
        else:
            daemon.release(go=False)
            try:  # it ends on its own, unread; reaped here so that it does not end the bundle
                daemon.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"bottle-bundle: {daemon.name}, not wanted by the claim, did not end; stopping",
                      file=sys.stderr, flush=True)
                sys.exit(1)
    return kept


def listen_for(daemon: Daemon) -> None:
    """Listen on the address of a daemon handed its socket, or stop the bundle saying why not."""
    try:
        daemon.listen()
    except OSError as exc:
        print(f"bottle-bundle: cannot listen for the {daemon.name} on {daemon.address[0]}:{daemon.address[1]}: "
              f"{exc.strerror or exc}; stopping", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def main() -> None:
    config = read_config()
    kept: dict[str, Daemon] = {}
    if pooled.is_pooled():
        ahead = start_ahead(config)
        claimed = read_config()  # the claiming run's
        kept, config = take_over(ahead, config, claimed), claimed
    running = [kept.get(d.name, d) for d in daemons(config)]
    children = watch_children()  # before anything more starts: no end goes unheard
    for daemon in kept.values():  # the slow ones first: they read the run's configuration meanwhile
        daemon.release(go=True)
    prepare_egress_stage(config)
    stop_on_term(running)
    for daemon in running:
        if daemon.process is not None:
            continue  # started ahead of the claim
        if daemon.handed_socket:
            listen_for(daemon)
        if not daemon.on_first_connection:
            daemon.start()
    loop = Loop(running, children)
    loop.announce_ready()
    ended = loop.until_one_ends()  # the first daemon to end ends the bundle
    print(f"bottle-bundle: {ended.name} exited ({ended.process.returncode}); stopping", file=sys.stderr, flush=True)
    stop_all(running)
    sys.exit(1)


if __name__ == "__main__":
    main()
