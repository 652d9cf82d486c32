"""A response body cut into the spans a model reads one at a time, with offsets into the body.

:func:`spans` yields each sentence of text (between tags, in a line), each
comment, each attribute a model reads (``alt``, ``title``, ``aria-label``,
``data-*``, ``content``), and each JSON string, as a :class:`Span`: where it
sits in the body, the text a model reads there (entities and escapes
resolved), and whether a reader would see it. ``response_inspection`` scores
each span by what it asks of the agent and takes out only the spans that
carry instructions, so the rest of a page stays readable.

Standard library only.
"""

from __future__ import annotations

import html
import json
import re
from bisect import bisect_right
from itertools import accumulate
from collections.abc import Iterator
from dataclasses import dataclass

_MARKUP_TOKEN = re.compile(r"<!--(?P<comment>.*?)-->|<(?P<skip>script|style)\b[^>]*>.*?</(?P=skip)\s*>"
                           r"|<(?P<tag>[A-Za-z/!?][^>]{0,2000})>|(?P<text>(?:[^<]|<(?![A-Za-z/!?]))+)", re.S | re.I)
_READ_ATTR = re.compile(r"\b(?:alt|title|aria-label|data-[\w-]+|content|placeholder)\s*=\s*(?P<q>[\"'])"
                        r"(?P<value>[^\"']{12,2000})(?P=q)", re.I)
#: Markup a reader does not see (hidden by its style): where instructions to an agent like to hide.
HIDDEN = re.compile(
    r"<(?P<tag>[a-z0-9]+)\b[^>]*style\s*=\s*[\"'][^\"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|"
    r"font-size\s*:\s*0(?:\.\d+)?(?:px|em|rem|pt)?\s*[;\"']|font-size\s*:\s*[01]px|opacity\s*:\s*0(?:\.0\d*)?\s*[;\"']|"
    r"color\s*:\s*(?:#fff(?:fff)?|white|transparent|rgba\([^)]*,\s*0\))|"
    r"(?:left|top|text-indent)\s*:\s*-\d{4,}px|height\s*:\s*0[;\"p]|width\s*:\s*0[;\"p])"
    r"[^>]*>(?P<inner>.{0,4000}?)</(?P=tag)\s*>", re.S | re.I)
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
#: A sentence ends at . ! or ? followed by a space and a capital (so a URL or a version number does not end one).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'“(\[])")
_LINE = re.compile(r"[^\n]+")


@dataclass(frozen=True)
class Span:
    """A piece of a body read on its own: ``start``/``end`` index the body's text, ``text`` is what a model reads."""

    start: int
    end: int
    text: str
    hidden: bool = False  # a reader of the rendered page would not see it
    block: int = 0  # spans of one text node, line or JSON string share this


def sentences(raw: str, offset: int, block: int, hidden: bool, decode=html.unescape) -> Iterator[Span]:
    """The sentences of ``raw``, line by line, as spans (``offset``: where ``raw`` starts in the body)."""
    for line in _LINE.finditer(raw):
        start = line.start()
        for end_match in [*_SENTENCE_END.finditer(line.group()), None]:
            end = end_match.start() if end_match else len(line.group())
            text = line.group()[start - line.start():end]
            if text.strip():
                yield Span(offset + start, offset + line.start() + end, decode(text), hidden, block)
            if end_match:
                start = line.start() + end_match.end()


def looks_like_markup(raw: str) -> bool:
    head = raw[:2048]
    return "<" in head and ">" in head


def looks_like_json(raw: str, content_type: str) -> bool:
    return raw.lstrip()[:1] in ("{", "[") or "json" in content_type.lower()


def spans(raw: str, content_type: str = "") -> Iterator[Span]:
    """Every span of ``raw`` a model reads on its own, in order."""
    if looks_like_json(raw, content_type):
        for block, match in enumerate(_JSON_STRING.finditer(raw)):
            try:
                text = json.loads(match.group())
            except ValueError:
                text = match.group()[1:-1]
            if len(text) >= 12:
                yield Span(match.start() + 1, match.end() - 1, text, False, block)
        return
    if not looks_like_markup(raw):
        yield from (s for n, line in enumerate(_LINE.finditer(raw))
                    for s in sentences(line.group(), line.start(), n, False, str))
        return
    hidden = sorted((m.start("inner"), m.end("inner")) for m in HIDDEN.finditer(raw))
    starts = [start for start, _ in hidden]
    reach = list(accumulate((end for _, end in hidden), max))  # the furthest end of the ranges begun so far

    def is_hidden(position: int) -> bool:
        index = bisect_right(starts, position) - 1  # a page of many hidden blocks: no scan of them all per token
        return index >= 0 and reach[index] > position

    for block, token in enumerate(_MARKUP_TOKEN.finditer(raw)):
        if token.group("comment") is not None:
            text = token.group("comment")
            if text.strip():
                yield Span(token.start("comment"), token.end("comment"), html.unescape(text), True, block)
        elif token.group("tag") is not None:
            for attr in _READ_ATTR.finditer(token.group("tag")):
                start = token.start("tag") + attr.start("value")
                yield Span(start, start + len(attr.group("value")), html.unescape(attr.group("value")), True, block)
        elif token.group("text") is not None:
            yield from sentences(token.group("text"), token.start("text"), block, is_hidden(token.start("text")))
