"""Runs of one character class found fast: a byte search says where one can be, the regex runs only there.

The scrubber looks through every byte of a response for encoded runs
(``inspection.ENCODED_RUN``: sixteen or more characters of the base64
alphabet, then ``=`` padding) and, in a stream, for one still open at a
piece's end. Python's regex engine tries the character class at every byte,
about 10-20 ns a byte, which was most of what scrubbing a download cost.
:class:`RunSearch` first maps the bytes to a mask in C (``bytes.translate``:
"a character of the class" or not) and finds the shortest run in the mask
(``bytes.find``); the regex itself runs only from there, so its matches are
the regex's own, found where they start.

What it reads off the pattern (:meth:`RunSearch.__init__`): the class (the
bytes a long repetition of which the pattern matches), the shortest run, and
which bytes a match can hold at all (the class and what may follow it, such
as ``=``). A pattern of that shape, ``[class]{n,}`` with a tail of other
bytes, is searched exactly as :meth:`re.Pattern.finditer` would; the unit
tests compare the two.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_IN, _OUT = b"a", b"."


def _mask(members: bytes) -> bytes:
    """A ``bytes.translate`` table: each of ``members`` to ``_IN``, every other byte to ``_OUT``."""
    return bytes(_IN[0] if b in members else _OUT[0] for b in range(256))


class RunSearch:
    """:meth:`finditer`, :meth:`sub` and :meth:`search_tail` of ``pattern``, a run of one class, made fast."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        letters = bytes(b for b in range(256) if pattern.fullmatch(bytes([b]) * 256))
        if not letters:
            raise ValueError(f"{pattern.pattern!r} does not match a run of one character class")
        self.shortest = next(n for n in range(1, 257) if pattern.fullmatch(letters[:1] * n))
        members = letters + bytes(b for b in range(256)
                                  if b not in letters and pattern.fullmatch(letters[:1] * self.shortest + bytes([b])))
        self._letters, self._members = _mask(letters), _mask(members)
        self._seed = _IN * self.shortest

    def finditer(self, data: bytes) -> Iterator[re.Match[bytes]]:
        """The pattern's matches in ``data``: the same, in the same order, as ``pattern.finditer(data)``."""
        mask = data.translate(self._letters)
        pos = 0
        while (start := mask.find(self._seed, pos)) != -1:
            # No match starts before ``start``: it would begin with ``shortest`` letters, which the mask would show.
            match = self.pattern.search(data, start)
            if match is None:
                return
            yield match
            pos = max(match.end(), match.start() + 1)

    def sub(self, repl: Callable[[re.Match[bytes]], bytes], data: bytes) -> bytes:
        """``pattern.sub(repl, data)``, with ``repl`` called on the same matches in the same order."""
        pieces, last = [], 0
        for match in self.finditer(data):
            pieces += (data[last:match.start()], repl(match))
            last = match.end()
        if not pieces:
            return data
        pieces.append(data[last:])
        return b"".join(pieces)

    def search_tail(self, data: bytes) -> re.Match[bytes] | None:
        """``pattern.search(data)`` for a pattern that ends with ``$`` (a run at the end of ``data``).

        Such a match holds only bytes a match can hold and ends at the end (or
        before a final newline, as ``$`` does), so the search starts after the
        last byte that cannot be in it.
        """
        end = len(data) - 1 if data.endswith(b"\n") else len(data)
        return self.pattern.search(data, data.translate(self._members).rfind(_OUT, 0, end) + 1)
