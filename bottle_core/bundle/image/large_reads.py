"""Larger socket reads for the proxy's connections: a fast download passes mitmproxy in fewer, larger pieces.

mitmproxy (8.1) reads each connection at most 64 KiB at a time, and asyncio
stops receiving from a socket once 128 KiB wait unread. Every read becomes one
event through mitmproxy's layers (TLS, HTTP, the addons' stream callables),
and that Python work per event, not the cryptography, is what bounds a
download through the proxy.

:func:`install` makes every stream mitmproxy opens from then on hand over up
to :data:`READ` bytes a read and keep receiving until twice :data:`BUFFER`
wait. A read returns what has arrived without waiting for more, so a fast
download goes through in pieces as large as what piled up while the previous
one was handled (about half a MiB when the proxy is the bottleneck), and a
slow stream (a model's answer as it is written) still passes each piece the
moment it arrives. Nothing is skipped: every piece goes through the same
layers and checks, only fewer times. What a connection may hold unread stays
bounded (twice :data:`BUFFER`, plus one receive), so many slow readers cannot
fill the bundle's memory.
"""

from __future__ import annotations

import asyncio.streams

#: The most one read hands to mitmproxy.
READ = 1 << 20
#: asyncio stops receiving from a socket once twice this much waits unread (per connection: bounds its memory).
BUFFER = 1 << 18


class LargeReads(asyncio.streams.StreamReader):
    """A stream reader whose bounded reads take up to :data:`READ` bytes, however few were asked for."""

    def __init__(self, limit: int = BUFFER, loop=None) -> None:
        super().__init__(max(limit, BUFFER), loop)

    async def read(self, n: int = -1) -> bytes:
        return await super().read(READ if 0 < n < READ else n)


def install() -> None:
    """Make every stream opened from now on (mitmproxy's client and server connections) a :class:`LargeReads`."""
    asyncio.streams.StreamReader = LargeReads  # what asyncio.open_connection and start_server construct
