"""The scrubber's fast search for encoded runs finds what the regex finds, and scrubs exactly as before.

``run_search.RunSearch`` replaces a regex scan of every byte by a byte search
in C; the scrubber also keeps each run's verdict. Both must change nothing the
agent receives: the outputs here are compared with the scrubber's previous
code (kept below as the reference), on encoded forms of a value, on bytes
made to hold many runs, and through a stream cut at every boundary.
"""

from __future__ import annotations

import base64
import gzip
import random
import re
from urllib.parse import quote

import pytest

from bottle_core.bundle.image import response_inspection as responses
from bottle_core.bundle.image.inspection import ENCODED_RUN, InspectionLimit, decoded_views
from bottle_core.bundle.image.response_stream import ResponseStream
from bottle_core.bundle.image.run_search import RunSearch

VALUE = "tok-9fQz2LmXv8RkPw3NsYt6HbJd"
PLACEHOLDER = "bottle-placeholder-TOKEN-0123456789abcdef"
TRAILING = re.compile(rb"[A-Za-z0-9+/_\-]+={0,6}$")


class Reference(responses.Scrubber):
    """The scrubber as it was: each form searched for as it is, the regex over every byte, no verdict kept."""

    def scrub(self, data: bytes, partial: bool = False) -> tuple[bytes, int]:
        count = 0
        for real, stand_in in self.pairs:
            if real in data:
                count += data.count(real)
                data = data.replace(real, stand_in)
        for core, value, placeholder in self.cores:
            if core in data:
                data, n = responses._rewrite_b64_runs(data, core, value, placeholder)
                count += n
        if self.known:
            data, n = self._damage_encoded(data, partial)
            count += n
        return data, count

    def _damage_encoded(self, data: bytes, partial: bool = False) -> tuple[bytes, int]:
        count = 0

        def fix(match: re.Match) -> bytes:
            nonlocal count
            run = match.group()
            if partial and match.end() == len(data) and len(run) < responses.OPEN_RUN:
                return run
            try:
                hit = any(k.found_in(view) for view in decoded_views(run, budget=[8 * len(run) + 4096])
                          for k in self.known)
            except InspectionLimit:
                hit = True
            if not hit:
                return run
            count += 1
            return responses.DAMAGED

        return ENCODED_RUN.sub(fix, data), count

    def open_prefix(self, data: bytes) -> int:
        longest = 0
        for pattern in [real for real, _ in self.pairs] + [core for core, _, _ in self.cores]:
            tail = data[-(len(pattern) - 1):] if len(pattern) > 1 else b""
            start = tail.find(pattern[:1])
            while start != -1 and len(tail) - start > longest:
                if pattern.startswith(tail[start:]):
                    longest = len(tail) - start
                    break
                start = tail.find(pattern[:1], start + 1)
        if self.known:
            trailing = TRAILING.search(data[-responses.OPEN_RUN:])
            if trailing and len(trailing.group()) < responses.OPEN_RUN:
                longest = max(longest, len(trailing.group()))
        return longest


def scrubbers() -> tuple[responses.Scrubber, Reference]:
    secrets = [{"name": "TOKEN", "value": VALUE, "placeholder": PLACEHOLDER}]
    return responses.Scrubber(secrets), Reference(secrets)


RAW = VALUE.encode()
FORMS = [
    RAW, quote(VALUE, safe="").encode(), RAW.hex().encode(), RAW[::-1], VALUE.encode("utf-16-le"),
    VALUE.encode("utf-16-be"),
    base64.b64encode(RAW), base64.b64encode(b"x" + RAW), base64.b64encode(b"xy" + RAW).rstrip(b"="),
    base64.urlsafe_b64encode(b"\xfb\xff" + RAW), base64.b32encode(RAW), base64.b32encode(RAW).lower().rstrip(b"="),
    base64.b64encode(base64.b64encode(RAW)), base64.b64encode(gzip.compress(b"{'k': '" + RAW + b"'}")),
    b"prefix" + base64.b64encode(b"abc" + RAW),  # base64 starting mid-group
]


def noise(seed: int, size: int) -> bytes:
    """Bytes made to hold many runs and near-runs: base64 letters, '=' padding, separators, newlines."""
    rng = random.Random(seed)
    alphabet = b"AZaz09+/-_=" * 3 + b" .\n\0%\\\xff"
    return bytes(rng.choice(alphabet) if rng.random() < 0.9 else rng.randrange(256) for _ in range(size))


@pytest.mark.parametrize("seed", range(30))
def test_the_fast_search_finds_the_regex_matches(seed):
    data = noise(seed, 4000) + b"A" * (seed % 20)
    fast = RunSearch(ENCODED_RUN)
    assert [m.span() for m in fast.finditer(data)] == [m.span() for m in ENCODED_RUN.finditer(data)]
    assert fast.sub(lambda m: b"<" + m.group()[::-1] + b">", data) == \
        ENCODED_RUN.sub(lambda m: b"<" + m.group()[::-1] + b">", data)
    for cut in range(0, len(data), 97):  # the run still open at a piece's end, wherever the piece ends
        piece = data[:cut] + (b"\n" if seed % 3 == 0 else b"")
        got, want = RunSearch(TRAILING).search_tail(piece), TRAILING.search(piece)
        assert (got and got.span()) == (want and want.span()), cut


def test_edges_of_the_search():
    fast = RunSearch(ENCODED_RUN)
    for data in (b"", b"A" * 15, b"A" * 16, b"A" * 15 + b"=" * 8, b"=" * 20, b"A" * 16 + b"=" * 7 + b"B" * 16,
                 b"\n" + b"A" * 40 + b"\n", b"A" * 20 + b"%" + b"A" * 20):
        assert [m.span() for m in fast.finditer(data)] == [m.span() for m in ENCODED_RUN.finditer(data)], data
        for tail in (data, data + b"\n", data + b"\n\n", data + b"=="):
            got, want = RunSearch(TRAILING).search_tail(tail), TRAILING.search(tail)
            assert (got and got.span()) == (want and want.span()), tail


def test_a_pattern_that_is_not_a_run_is_refused():
    with pytest.raises(ValueError, match="character class"):
        RunSearch(re.compile(rb"ab"))


@pytest.mark.parametrize("form", FORMS, ids=range(len(FORMS)))
def test_each_encoded_form_is_scrubbed_as_before(form):
    fast, reference = scrubbers()
    for body in (form, b"see " + form + b" and " + noise(1, 300) + form, noise(2, 500) + form + b"\n",
                 b"\0" * 999 + form + b"\0" * 999):  # NUL-filled data: the UTF-16 forms are looked for otherwise
        for partial in (False, True):
            assert fast.scrub(body, partial) == reference.scrub(body, partial)
            assert fast.scrub(body, partial) == reference.scrub(body, partial)  # the second time: kept verdicts
        assert fast.open_prefix(body) == reference.open_prefix(body)
        assert RAW not in fast.scrub(body)[0] and form not in fast.scrub(body)[0]


@pytest.mark.parametrize("form", FORMS[4:], ids=range(4, len(FORMS)))
def test_a_stream_cut_anywhere_sends_what_it_sent_before(form):
    fast, reference = scrubbers()
    body = b"<p>" + noise(3, 40) + b" " + form + b" " + noise(4, 40) + b"</p>"
    for size in range(1, len(body) + 1, 3):
        outputs = []
        for scrubber in (fast, reference):
            stream, sent = ResponseStream(scrubber, None, block=True), []
            for start in range(0, len(body), size):
                sent += stream(body[start:start + size])
            sent += stream(b"")
            outputs.append(b"".join(sent))
        assert outputs[0] == outputs[1], size
        assert RAW not in outputs[0], size


def test_a_kept_verdict_is_the_verdict_of_that_run_only():
    fast, _ = scrubbers()
    held = base64.b64encode(gzip.compress(b"id=" + RAW, mtime=0))  # only the decoding pass finds it
    innocent = base64.b64encode(gzip.compress(b"id=" + b"x" * len(RAW), mtime=0))
    assert fast.scrub(innocent) == (innocent, 0)
    assert fast.scrub(held) == (responses.DAMAGED, 1)
    assert fast.scrub(innocent + b" " + held) == (innocent + b" " + responses.DAMAGED, 1)


def test_the_kept_verdicts_stay_bounded():
    fast, _ = scrubbers()
    runs = b" ".join(b"identifier_number_%08d" % i for i in range(responses.VERDICTS + 10))
    assert fast.scrub(runs) == (runs, 0)
    assert 0 < len(fast._verdicts) <= responses.VERDICTS
    long_run = b"Q" * (responses.VERDICT_RUN + 1)
    fast.scrub(long_run)
    assert long_run not in fast._verdicts
