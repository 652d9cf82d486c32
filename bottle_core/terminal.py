"""Text bound for the user's terminal, with every control character made visible.

Text that came from a bottle (a request path, a tool's input, a file name in
the user's repository, a record in a log) may hold terminal control
sequences: ``ESC[2K`` erases the row the user is reading, OSC sets the window
title or writes the clipboard, a bidi override reorders what is shown. Every
place the ``bottle`` command shows such text passes it through
:func:`visible` first, so those characters are shown as escapes instead of
acting.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline too: one record is one line), DEL, C1 controls (8-bit CSI, OSC, ...), and the
# Unicode characters that reorder or hide text (bidi embeddings, overrides and isolates; zero-width marks).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` as a string whose control characters are shown as ``\\x1b``-style escapes, never acted on."""
    return _UNSAFE.sub(_escape, str(text))
