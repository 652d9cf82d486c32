"""``head_limit.over``: where a head is past the proxy's bound (mitmproxy itself is in the bundle image only)."""

from __future__ import annotations

from bottle_core.bundle.image.head_limit import MAX_HEAD, over


def head(size: int, end: bytes = b"\r\n\r\n") -> bytes:
    """A request head of exactly ``size`` bytes, its blank line included."""
    start = b"GET / HTTP/1.1\r\nX-Pad: "
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_head_up_to_the_bound_is_within_it_whatever_follows():
    assert not over(head(MAX_HEAD))
    assert not over(head(1000) + b"x" * (4 * MAX_HEAD))  # a body after it is not the head's
    assert not over(head(MAX_HEAD, end=b"\n\n"))  # bare line feeds end a head too (as h11 reads it)


def test_a_head_past_the_bound_is_over_it_ended_or_not():
    assert over(head(MAX_HEAD + 1))
    assert over(head(4 * 1024 * 1024)[:MAX_HEAD + 1])  # still arriving: no blank line within the bound
    assert over(b"\r\n" * (MAX_HEAD // 2 + 1) + head(100))  # blank lines before a head count against it


def test_a_buffer_within_the_bound_is_never_over_it():
    assert not over(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 1000)  # not ended yet, but short
    assert not over(b"")
