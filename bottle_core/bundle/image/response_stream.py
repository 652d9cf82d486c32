"""Large and open-ended responses relayed as they arrive, still scrubbed and read for prompt injection.

By default mitmproxy reads a whole response into memory before it sends the
first byte on: a 100 MB download would sit in the bundle's memory, and a
streamed model answer (server-sent events) would reach the agent only once
finished. :func:`streamed` says which responses are relayed as they arrive
instead; each of those passes through a :class:`ResponseStream`, which does
to every piece what the proxy does to a held body (``response_inspection``):

* real secret values are put back to their placeholders. The end of what has
  been scrubbed is held back while it could still be the start of a real
  value in any of its encoded forms, until the next piece (or the end) says
  whether it is one (an encoded run still open at a piece's end is held
  too); a base64 run that a piece boundary cuts loses the secret's core
  instead of being re-encoded (damaged, never revealed);
* a body that is read for prompt injection has its first
  :data:`~response_inspection.MAX_INJECTION_SCAN` bytes (all that is read of
  a held body too) held until they are read, so nothing unread reaches the
  agent. Found in ``block`` mode, the spans that carry instructions are
  taken out and the rest relayed when the rest is ordinary content
  (``response_inspection.find_injection``); otherwise the stream is cut:
  nothing more passes and the connection is closed before the response
  completes (its status line left already, so there is no 403); in ``warn`` mode it passes, and the
  warning is in the egress record (its headers left already, so there is no
  ``X-Bottle-Warning``).

A response is held whole, as before, when it is small, when it has no
declared length and is read for injection (so it can still be withheld with a
403 or marked), or when it is compressed and must be inspected (only a whole
body is decoded).
"""

from __future__ import annotations

from collections.abc import Callable

from .response_inspection import MAX_INJECTION_SCAN, Scrubber, Verdict

HOLD_LIMIT = 1 << 20  # bytes: responses up to this size are held and inspected whole
NO_BODY_STATUS = (101, 204, 304)


def streamed(method: str, status: int, headers, *, read: bool, scrubbing: bool) -> bool:
    """Whether a response (its request's method, its status and headers) is relayed as it arrives.

    :param read: its body will be read for prompt injection.
    :param scrubbing: the bottle has secrets, so its body is scrubbed.
    """
    if method.upper() == "HEAD" or status in NO_BODY_STATUS:
        return False
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) <= HOLD_LIMIT:
        return False
    if read and not length.isdigit():
        return False  # a page of unknown length that is read: held, so it can still get its 403 or its mark
    encoded = headers.get("content-encoding", "").strip().lower() not in ("", "identity")
    return not (encoded and (read or scrubbing))


class ResponseStream:
    """What mitmproxy calls with each piece of a streamed body (and ``b""`` at its end); returns what to send on."""

    def __init__(self, scrubber: Scrubber, read: Callable[[bytes], Verdict] | None, block: bool) -> None:
        self.scrubber, self.read, self.block = scrubber, read, block
        self.carry = b""  # scrubbed, held back: it could still begin a real value
        self.unread: bytearray | None = bytearray() if read else None
        self.verdict: Verdict | None = None
        self.cut = False
        self.bytes_in = 0
        self.scrubbed = 0

    def __call__(self, data: bytes) -> list[bytes]:
        # A list, never b"": an empty piece would end a chunked body early.
        self.bytes_in += len(data)
        if self.cut:
            return []
        end = not data
        clean = self._scrub(data, end)
        if self.unread is None:
            return [clean] if clean else []
        self.unread += clean
        if len(self.unread) < MAX_INJECTION_SCAN and not end:
            return []
        held, self.unread = bytes(self.unread), None
        self.verdict = self.read(held)  # type: ignore[misc]
        if self.verdict.injection and self.block:
            if self.verdict.cleaned is not None:
                return [self.verdict.cleaned]  # the instructions taken out, the rest relayed
            self.cut = True
            return []
        return [held] if held else []

    def _scrub(self, data: bytes, end: bool) -> bytes:
        if not self.scrubber.pairs:
            return data
        clean, count = self.scrubber.scrub(self.carry + data, partial=not end)
        self.scrubbed += count
        keep = 0 if end else self.scrubber.open_prefix(clean)
        self.carry = clean[len(clean) - keep:] if keep else b""
        return clean[:len(clean) - keep]
