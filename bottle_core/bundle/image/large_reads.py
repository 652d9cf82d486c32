"""Larger socket reads for the proxy's connections: a fast download passes mitmproxy in fewer, larger pieces.

mitmproxy (8.1) reads each connection at most 64 KiB at a time, and asyncio
stops reading a socket once 128 KiB wait in its buffer and hands it over at
most 256 KiB per receive. Every read becomes one event through mitmproxy's
layers (TLS, HTTP, the addons' stream callables), and that Python work per
event, not the cryptography, is what bounds a download through the proxy.

:func:`install` makes every stream mitmproxy opens read up to :data:`READ`
bytes at once. A read returns what has arrived without waiting for more, so a
fast download goes through in pieces as large as what piled up while the
previous one was handled, and a slow stream (a model's answer as it is
written) still passes each piece the moment it arrives. Nothing is skipped:
every piece still goes through the same layers and checks, only fewer times.
"""

from __future__ import annotations

import asyncio.streams

#: The most one read hands to mitmproxy, and the most asyncio receives from a socket at once.
READ = 1 << 20
#: asyncio pauses a socket once twice this much waits unread (per connection: bounds the proxy's memory).
BUFFER = 1 << 20


class LargeReads(asyncio.streams.StreamReader):
    """A stream reader whose bounded reads take up to :data:`READ` bytes, however few were asked for."""

    def __init__(self, limit: int = BUFFER, loop=None) -> None:
        super().__init__(max(limit, BUFFER), loop)

    async def read(self, n: int = -1) -> bytes:
        return await super().read(READ if 0 < n < READ else n)

    def set_transport(self, transport) -> None:
        super().set_transport(transport)
        if getattr(transport, "max_size", READ) < READ:
            transport.max_size = READ  # how much the event loop receives from the socket in one go


def install() -> None:
    """Make every stream opened from now on (mitmproxy's client and server connections) a :class:`LargeReads`."""
    asyncio.streams.StreamReader = LargeReads  # what asyncio.open_connection and start_server construct
