"""A threaded HTTP server whose idle connections cost no thread: the bundle's daemons under a flood.

``http.server.ThreadingHTTPServer`` starts a thread per accepted connection
and keeps it while the client says nothing, so a few hundred idle
connections from the agent use up the bundle's pids and every daemon stops
answering. :class:`HeldConnectionsServer` instead holds each new connection
in one watcher thread (a selector) until the client sends something, and
only then hands it to a worker from a bounded pool. So:

* an idle connection holds a file descriptor, never a thread, and is closed
  after :attr:`~HeldConnectionsServer.idle_timeout` seconds of silence;
* each client address holds at most :attr:`~HeldConnectionsServer.per_client`
  idle connections: a new one closes that client's oldest idle one, so a
  client's own flood never shuts out its next real request;
* at most :attr:`~HeldConnectionsServer.workers` requests run at once; a
  request that stalls mid-way (or a kept-alive connection gone quiet) ends
  after :attr:`~HeldConnectionsServer.request_timeout` seconds of silence.
"""

from __future__ import annotations

import collections
import http.server
import selectors
import socket
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor


class HeldConnectionsServer(http.server.ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with idle connections held by one thread and requests run by a bounded pool."""

    daemon_threads = True
    #: Seconds a connection may stay silent before its first request.
    idle_timeout = 20.0
    #: Seconds of silence that end a request being read (or a kept-alive connection between requests).
    request_timeout = 20.0
    #: Idle connections one client address may hold; a new one closes its oldest.
    per_client = 64
    #: Requests served at once.
    workers = 16

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="request")
        self._selector = selectors.DefaultSelector()
        self._arrived: collections.deque = collections.deque()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._idle: dict[tuple, collections.OrderedDict] = {}  # client host -> {socket: (address, since)}
        threading.Thread(target=self._watch, name="held-connections", daemon=True).start()

    def process_request(self, request, client_address) -> None:
        """Hold the accepted connection until it speaks (called on the accepting thread)."""
        self._arrived.append((request, client_address))
        self._wake_write.send(b"\0")

    def _watch(self) -> None:
        while True:
            try:
                self._watch_once()
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad connection
                traceback.print_exc()

    def _watch_once(self) -> None:
        """Hand each connection that spoke to a worker, hold the new ones, close those idle too long."""
        for key, _ in self._selector.select(timeout=1.0):
            if key.fileobj is self._wake_read:
                self._wake_read.recv(4096)
                continue
            request = key.fileobj
            address, _ = self._release(request)
            self._pool.submit(self._serve, request, address)
        while self._arrived:
            self._hold(*self._arrived.popleft())
        self._close_idle()

    def _hold(self, request, client_address) -> None:
        held = self._idle.setdefault(client_address[0], collections.OrderedDict())
        while len(held) >= self.per_client:
            self._drop(next(iter(held)))
        held[request] = (client_address, time.monotonic())
        self._selector.register(request, selectors.EVENT_READ)

    def _release(self, request) -> tuple:
        self._selector.unregister(request)
        for host, held in list(self._idle.items()):
            if request in held:
                address = held.pop(request)
                if not held:
                    del self._idle[host]
                return address
        raise KeyError(request)

    def _drop(self, request) -> None:
        self._release(request)
        self.shutdown_request(request)

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self.idle_timeout
        for held in list(self._idle.values()):
            for request, (_, since) in list(held.items()):
                if since < deadline:
                    self._drop(request)

    def _serve(self, request, client_address) -> None:
        try:
            request.settimeout(self.request_timeout)
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one bad connection must not end the worker
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
