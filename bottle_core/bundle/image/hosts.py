"""Host names as every part of the bundle compares them, and the one measure of how random a string is.

An allow-list entry, a secret's hosts, an inspection binding and a supervision rule's ``domain:`` all name
hosts the same way: ``example.com`` is that name only, ``*.example.com`` any name below it (not the name
itself), and ``name:port`` one port only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def normal_host(host: str) -> str:
    """A host as compared with patterns: lower case, without the root's trailing dot or IPv6 brackets."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def host_matches(pattern: str, host: str) -> bool:
    """``pattern`` (a name, or ``*.`` and a suffix) against ``host``."""
    pattern, host = pattern.lower(), normal_host(host)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def entry_matches(entry: str, host: str, port: int | None) -> bool:
    """``entry`` (``pattern`` or ``pattern:port``) against ``host`` and, when both name one, ``port``."""
    pattern, _, only_port = entry.partition(":")
    if only_port and port is not None and int(only_port) != port:
        return False
    return host_matches(pattern, host)


def bound(entries: Iterable[str], host: str, port: int | None) -> bool:
    """Whether any of ``entries`` matches ``host:port``."""
    return any(entry_matches(entry, host, port) for entry in entries)


class Unbound(Generic[T]):
    """Of some items each bound to hosts (entries as :func:`bound` reads them), those not bound to a host:port.

    A request is judged against hundreds of such items (credential patterns,
    each with the hosts that may receive it) but comes from a handful of
    hosts, so the answer is kept per host and port (up to :attr:`limit` of
    them, then started afresh). The items are fixed when it is made: a
    changed policy is a new :class:`Unbound`.
    """

    limit = 1024

    def __init__(self, items: Iterable[tuple[T, Iterable[str]]]) -> None:
        self.items = [(item, tuple(entries)) for item, entries in items]
        self._answers: dict[tuple[str, int | None], tuple[T, ...]] = {}

    def __call__(self, host: str, port: int | None) -> list[T]:
        """The items none of whose entries match ``host:port``, in their order (a new list each time)."""
        key = (host, port)
        answer = self._answers.get(key)
        if answer is None:
            if len(self._answers) >= self.limit:
                self._answers.clear()
            answer = self._answers[key] = tuple(item for item, entries in self.items
                                                if not (entries and bound(entries, host, port)))
        return list(answer)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character (0 for the empty string)."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
