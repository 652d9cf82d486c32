"""One bound on an HTTP/1 message's head (its first line and headers), for every connection of the proxy.

mitmproxy 8.1 reads an HTTP/1 head until the blank line that ends it, however
long it grows (its own code says ``FIXME: protect against header size DoS``):
a request head of megabytes inside a tunnel was read whole, inspected whole
and relayed to the origin, and an origin's response head of megabytes was held
whole in the bundle. :func:`install` bounds both, on the agent's connections
(in a tunnel and outside one) and on the connections to servers, at
:data:`MAX_HEAD` bytes, squid's own default for a head.

* A request head past it is answered by the proxy at once, with the answer
  the addon gives (a ``431`` naming the rule ``head-limit``), and the
  connection closes; nothing is relayed.
* A response head past it ends the server's connection and the request, with
  :data:`RESPONSE_ERROR` as the flow's error: the agent gets the proxy's fixed
  ``502`` page and the addon records the rule.

HTTP/2 heads are bounded by the h2 library already (its decoded header list,
at the same 64 KiB): a connection past it is ended as a protocol error.
"""

from __future__ import annotations

import re
from typing import Callable

#: The most a request or response head may hold, its first line and every header with their line ends.
MAX_HEAD = 64 * 1024
RULE = "head-limit"
#: The error of a flow whose response head was past :data:`MAX_HEAD` (the addon's error hook knows it by this).
RESPONSE_ERROR = f"the server's response head is over {MAX_HEAD // 1024} KiB"
#: How a head ends (the blank line), as h11, which mitmproxy reads heads with, finds it.
HEAD_END = re.compile(rb"\n\r?\n")


def over(buffered: bytes | bytearray, limit: int = MAX_HEAD) -> bool:
    """Whether the head at the start of ``buffered`` is past ``limit``: no blank line ends it within ``limit`` bytes.

    Blank lines before a head (which h11 skips, one a read) count against it too.
    """
    if len(buffered) <= limit:
        return False
    start = len(buffered) - len(buffered.lstrip(b"\r\n"))
    return HEAD_END.search(buffered, start, limit) is None


def install(refuse_request: Callable[[object, bytes], bytes]) -> None:
    """Bound mitmproxy's HTTP/1 heads (once; a mitmproxy without the parts this relies on stops the proxy).

    ``refuse_request(context, start)`` is called for a request head past the
    bound, with the layer's context and the head's first bytes (for the
    record); it returns the whole answer to send the client before the
    connection closes.
    """
    from mitmproxy.proxy import commands, events
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import ResponseProtocolError

    server, client = _http1.Http1Server, _http1.Http1Client
    if getattr(server.read_headers, "bottle_bounded", False):
        return
    if not all(callable(getattr(cls, "read_headers", None)) for cls in (server, client)) \
            or "buf" not in getattr(_http1.Http1Connection, "__annotations__", {}):
        raise RuntimeError("this mitmproxy reads HTTP/1 heads otherwise: bottle cannot bound them")

    def read_request_head(self, event, _read=server.read_headers):
        if isinstance(event, events.DataReceived) and len(self.buf) > MAX_HEAD and over(bytes(self.buf)):
            yield commands.SendData(self.conn, refuse_request(self.context, bytes(self.buf)[:64]))
            yield commands.CloseConnection(self.conn)
            self.state = self.done
            return
        yield from _read(self, event)

    def read_response_head(self, event, _read=client.read_headers):
        if isinstance(event, events.DataReceived) and self.stream_id and len(self.buf) > MAX_HEAD \
                and over(bytes(self.buf)):
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(ResponseProtocolError(self.stream_id, RESPONSE_ERROR, code=502))
            self.state = self.done
            return
        yield from _read(self, event)

    for cls, bounded in ((server, read_request_head), (client, read_response_head)):
        bounded.bottle_bounded = True
        cls.read_headers = bounded

