"""``header_syntax.fault``: heads holding a byte a server could read as a line's end, and ordinary ones."""

from __future__ import annotations

import pytest

from bottle_core.bundle.image.header_syntax import fault

HOST = (b"Host", b"allowed.test")


@pytest.mark.parametrize("value", [b"a\rHost: denied.test", b"a\r\nHost: denied.test", b"a\r\n Host: denied.test",
                                   b"a\nb", b"a\x00b", b"a\x1bb", b"a\x7fb", b"a\x0bb"])
def test_a_value_with_a_control_character_is_a_fault(value):
    assert "control character" in fault([HOST, (b"X-A", value)], b"/")


@pytest.mark.parametrize("name", [b"Transfer-Encoding ", b"X A", b"X:A", b"", b"X\x00"])
def test_a_name_that_is_not_a_token_is_a_fault(name):
    assert "not a token" in fault([HOST, (name, b"v")], b"/")


@pytest.mark.parametrize("target", [b"/a b", b"/a\x00", b"/a\r\nX: y", b"/a\t"])
def test_a_target_with_a_space_or_control_character_is_a_fault(target):
    assert "request target" in fault([HOST], target)


def test_ordinary_heads_have_none():
    utf8 = "über 'q' (c) \"d\" ~!#".encode()
    assert fault([HOST, (b"X-Note", b"a\tb " + utf8), (b"Cookie", b"a=1; b=2"), (b"x-h2-name", b"")],
                 b"/p?q=%20&r=\xc3\xbc#f") is None
    assert fault([], b"") is None  # a CONNECT's target is its authority, not a path
    assert fault([], b"*") is None
