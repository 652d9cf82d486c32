"""A real value a server splits over two WebSocket messages never reaches the agent in two pieces."""

from __future__ import annotations

import pytest

from bottle_core.bundle.image import websockets
from bottle_core.bundle.image.response_inspection import Scrubber

REAL = "Vw3kQ8zR1tY6uI9oP2aS5dF7gH4jK0lX-real"
PLACEHOLDER = "bottle-placeholder-TOKEN-0123456789abcdef"


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber([{"name": "TOKEN", "value": REAL, "placeholder": PLACEHOLDER}])


def relay(scrubber: Scrubber, *messages: bytes) -> list[bytes]:
    """The messages as the agent gets them, each scrubbed with the end of the one before (as the proxy does)."""
    forms = [real for real, _ in scrubber.pairs] + [core for core, _, _ in scrubber.cores]
    carry = max([512, *map(len, forms)])
    before, out = b"", []
    for message in messages:
        out.append(websockets.scrub_from_server(scrubber, forms, before, message)[0])
        before = (before + message)[-carry:]
    return out


@pytest.mark.parametrize("cut", [1, 3, 7, 8, 20, len(REAL) - 1])
def test_a_value_split_over_two_messages_arrives_in_no_more_than_a_short_beginning(scrubber, cut):
    first, second = relay(scrubber, f"you sent Bearer {REAL[:cut]}".encode(), f"{REAL[cut:]} and more".encode())
    assert second == websockets.WITHHELD
    assert longest_piece(first + second, REAL.encode()) < websockets.HELD_BEGINNING


def test_a_value_split_in_an_encoded_form_is_withheld_too(scrubber):
    hexed = REAL.encode().hex().encode()
    first, second = relay(scrubber, b"hex: " + hexed[:30], hexed[30:])
    assert second == websockets.WITHHELD
    assert longest_piece(first + second, hexed) < websockets.HELD_BEGINNING


def longest_piece(seen: bytes, value: bytes) -> int:
    """The length of the longest part of ``value`` that ``seen`` holds."""
    return max((j - i for i in range(len(value)) for j in range(i + 1, len(value) + 1) if value[i:j] in seen),
               default=0)


def test_ordinary_messages_and_whole_values_arrive_as_before(scrubber):
    assert relay(scrubber, b"part one of a note", b"part two of a note") == [b"part one of a note",
                                                                            b"part two of a note"]
    whole = relay(scrubber, b"hello", f"you sent {REAL}".encode(), b"bye")
    assert whole == [b"hello", f"you sent {PLACEHOLDER}".encode(), b"bye"]
