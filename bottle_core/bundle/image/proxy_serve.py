"""The proxy's last addon: mitmproxy serves on the listening socket the entry point bound, once it may.

The entry point binds the proxy's address before it starts the proxy and
hands the listening socket over (``readiness.LISTEN_FD``), so a client that
connects while mitmproxy imports and loads its addons waits in the kernel's
backlog: it is neither refused nor served before the policy is in force.
mitmdump then runs with ``server=false`` (``proxy_start.py``): mitmproxy opens
no listener of its own, and :class:`Serve` serves the handed socket with
mitmproxy's own connection handler (``Proxyserver.handle_tcp_connection``,
what mitmproxy's ``asyncio.start_server`` is given), so every connection takes
the same way through mitmproxy's layers and the bundle's addons.

It serves only when all of this holds, and otherwise closes the socket (a
waiting client is reset, a later one refused) and ends the proxy, which ends
the bundle:

* every addon before it ran (it is the last one) and the policy said it is
  in force (the file ``bottle_policy_loaded`` names, which the policy writes);
* nothing was logged as an error while the proxy started (mitmdump ends on
  one: nothing is served meanwhile);
* the entry point said the bundle is ready (``readiness.SERVE`` on
  ``readiness.SERVE_FD``): the egress stage, every connection's upstream,
  listens. A pipe that closes unwritten is the entry point gone.

Run without a handed socket (by hand), it does nothing and mitmproxy listens
itself as usual.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mitmproxy import ctx
from mitmproxy.addons import proxyserver

from bottle_core.bundle.image import readiness

if not callable(getattr(proxyserver.Proxyserver, "handle_tcp_connection", None)):  # fail closed: never served
    raise RuntimeError("this mitmproxy serves its connections otherwise: bottle cannot hand it its socket")


async def word(fd: int) -> bytes:
    """The first byte written on the pipe ``fd`` (empty: it closed unwritten), without blocking the loop."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    said = os.read(fd, 1)
    os.close(fd)
    return said


class Serve:
    """Serves the handed socket (see the module's docstring); says why not and ends the proxy when it may not."""

    def __init__(self) -> None:
        self.listener = readiness.handed_socket()
        fd = os.environ.pop(readiness.SERVE_FD, None)
        self.told = int(fd) if fd else None
        self.errors: list[str] = []
        self.server: asyncio.base_events.Server | None = None

    def add_log(self, entry) -> None:
        if entry.level == "error":
            self.errors.append(entry.msg)

    def running(self) -> None:
        if self.listener is not None:
            # A task, not awaited here: the addons after this one (mitmdump's own error check among them) run on.
            asyncio.get_running_loop().create_task(self.serve())

    async def serve(self) -> None:
        told = await word(self.told) if self.told is not None else readiness.SERVE
        loaded = ctx.options.bottle_policy_loaded
        why = ("the bundle never became ready" if told != readiness.SERVE
               else "its policy is not in force" if loaded and not os.path.isfile(loaded)
               else f"it logged an error as it started: {self.errors[0]}" if self.errors else None)
        if why:
            self.listener.close()
            print(f"bottle-proxy: not serving: {why}", file=sys.stderr, flush=True)
            sys.exit(1)  # as mitmdump's own error check ends it: out of the event loop, non-zero
        handler = ctx.master.addons.get("proxyserver").handle_tcp_connection
        self.server = await asyncio.start_server(handler, sock=self.listener)
        print("bottle-proxy: serving", file=sys.stderr, flush=True)  # the bundle's log: when its clients were served

    def done(self) -> None:
        if self.server is not None:
            self.server.close()
