"""What a request's head may hold on its way to a server: no byte a server could read as the end of a line.

mitmproxy relays a header's value, name and the request target as they came:
a bare CR or a NUL inside an HTTP/1 header's value, a folded line (obs-fold,
kept as CR LF and a space), a CR LF inside an HTTP/2 header's value (written
out as a line of its own when the request goes on as HTTP/1.1), a space or
a NUL in an HTTP/2 path. A server on the way may read them as a line's end,
so as a header (a ``Host``, a ``Content-Length``) or a request the policy
never judged. :func:`fault` says which part of a head holds such a byte.
Standard library only.
"""

from __future__ import annotations

import re
from typing import Iterable

#: RFC 9110's field-value: visible characters, obs-text, space and horizontal tab.
FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
#: RFC 9110's token, a field's name.
FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A request target: visible characters and obs-text, no space.
TARGET = re.compile(rb"[\x21-\x7e\x80-\xff]*")


def fault(fields: Iterable[tuple[bytes, bytes]], target: bytes) -> str | None:
    """Why a head with these header (or trailer) ``fields`` and request ``target`` may not go on; None if it may."""
    for name, value in fields:
        if not FIELD_NAME.fullmatch(name):
            return "a header's name is not a token"
        if not FIELD_VALUE.fullmatch(value):
            return "a header holds a control character or a folded line, which a server could read as a header " \
                   "of its own"
    if not TARGET.fullmatch(target):
        return "the request target holds a space or a control character"
    return None
