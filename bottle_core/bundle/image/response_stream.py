"""mitmproxy addon: large and open-ended responses are relayed as they arrive, not held whole.

The proxy inspects what goes out (requests); a response is only relayed. By
default mitmproxy reads a whole response into memory before it sends the
first byte on: a 100 MB download would sit in the bundle's memory, and a
streamed model answer (server-sent events) would reach the agent only once
finished. A response with no declared length, or one over
:data:`HOLD_LIMIT`, is streamed instead.
"""

from __future__ import annotations

from mitmproxy import http

HOLD_LIMIT = 1 << 20  # bytes


class ResponseStream:
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        length = flow.response.headers.get("content-length", "")
        if not length.isdigit() or int(length) > HOLD_LIMIT:
            flow.response.stream = True


addons = [ResponseStream()]
