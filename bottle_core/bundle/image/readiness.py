"""How a daemon tells the bundle's entry point that it waits or serves, and how it is told to go: two pipes.

The entry point gives each daemon it starts the write end of a pipe of its
own (its number in :data:`READY_FD`): the daemon writes :data:`WAITING` once
it waits for a run's claim (a pooled bundle) and :data:`READY` once it
accepts connections; its end closes the pipe, which the entry point reads as
the daemon gone. A daemon started ahead of a claim also gets the read end of
another pipe (:data:`GO_FD`): it blocks reading it until the entry point
writes :data:`GO` (a run has claimed the bottle and its files are in place),
and ends at once when the pipe closes unwritten (the claim did not want it,
or the bundle stops). A daemon whose parent gave no pipes (run by hand, or a
test) neither says nor waits anything.

A daemon started on its first connection (the git gate, the supervisor) gets
neither: the entry point listens on its address itself, and starts it only
once a client connects, handing over the listening socket (its number in
:data:`LISTEN_FD`; :func:`server` serves on it), so the waiting connection
and every later one are the daemon's.

The proxy, too, is handed its listening socket, but at once: the entry
point binds its address before starting it, so a client that connects while
mitmproxy starts waits in the kernel's backlog. It says :data:`READY` as
soon as its CA is written (all the bundle's readiness needs of it: its
address listens already), and gets the read end of a third pipe
(:data:`SERVE_FD`), on which the entry point writes :data:`SERVE` once the
whole bundle is ready, the egress stage the proxy relays through among it;
the proxy accepts no connection before that (``proxy_serve.py``).

A Python daemon of the bundle is run by this module
(``python -m bottle_core.bundle.image.readiness bottle_core.bundle.image.MODULE [ARGS]``): its module
is imported first (the slow part of its start: ``http.server`` and the
rest), then, in a pooled bundle, the claim is awaited, then its ``main()``
runs and says :data:`READY` as soon as its TCP server listens.
The proxy (mitmdump, not started here) is started by ``proxy_start.py``.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys

READY_FD, GO_FD, LISTEN_FD, SERVE_FD = "BOTTLE_READY_FD", "BOTTLE_GO_FD", "BOTTLE_LISTEN_FD", "BOTTLE_SERVE_FD"
WAITING, READY, GO, SERVE = b"w", b"r", b"g", b"s"


def tell(what: bytes) -> None:
    """Say ``what`` to the entry point, if it listens."""
    fd = os.environ.get(READY_FD)
    if fd:
        try:
            os.write(int(fd), what)
        except OSError:
            pass  # the entry point is gone: the bundle is ending anyway


def wait_for_go() -> None:
    """In a daemon started ahead of a claim: say it waits, then wait for the go (or end when it never comes)."""
    fd = os.environ.pop(GO_FD, None)
    if not fd:
        return
    tell(WAITING)
    try:
        word = os.read(int(fd), 1)
    except InterruptedError:
        word = b""
    os.close(int(fd))
    if word != GO:
        os._exit(0)  # not wanted by the run (or the bundle stops): nothing was read, nothing to undo


def handed_socket() -> socket.socket | None:
    """The listening socket the entry point handed over (:data:`LISTEN_FD`), or ``None`` when it handed none."""
    fd = os.environ.pop(LISTEN_FD, None)
    if fd is None:
        return None
    listener = socket.socket(fileno=int(fd))  # bound and listening already
    listener.set_inheritable(False)  # this daemon's alone: a process it starts must not keep its port open
    return listener


def server(cls, address: tuple[str, int], handler):
    """A ``socketserver`` server of class ``cls`` serving on the listening socket the entry point handed
    over (:data:`LISTEN_FD`), or, when none was (run by hand, or a test), bound and listening on ``address``."""
    listener = handed_socket()
    if listener is None:
        return cls(address, handler)
    served = cls(address, handler, bind_and_activate=False)
    served.socket.close()
    served.socket = listener  # bound and listening already: no bind, no listen here
    served.server_address = served.socket.getsockname()
    # What http.server's server_bind would set, without its reverse lookup of the address (refused here anyway).
    served.server_name, served.server_port = served.server_address[:2]
    return served


def _say_ready_on_listen() -> None:
    """Say :data:`READY` when the daemon's first TCP server starts listening (a Unix socket it opens does not
    count: the supervisor's control socket comes before its hook server)."""
    import socketserver

    activate = socketserver.TCPServer.server_activate
    said = []

    def server_activate(self) -> None:
        activate(self)
        if not said and self.address_family in (socket.AF_INET, socket.AF_INET6):
            said.append(True)
            tell(READY)

    socketserver.TCPServer.server_activate = server_activate  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    """Run the daemon module ``argv[0]`` of this package (its ``main()``, with ``argv[1:]`` as its arguments)."""
    name, *args = argv
    if not name.startswith(f"{__package__}."):
        raise SystemExit(f"readiness: {name} is not a daemon of {__package__}")
    module = importlib.import_module(name)  # its imports now: they read no configuration
    wait_for_go()
    _say_ready_on_listen()
    sys.argv = [module.__name__, *args]
    return module.main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
