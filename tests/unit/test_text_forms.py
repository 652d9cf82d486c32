"""The trivial obfuscations inspection undoes: each refused as a credential, its ordinary counterpart passing."""

from __future__ import annotations

import base64
import codecs

import pytest

from bottle_core.bundle.image import text_forms
from bottle_core.bundle.image.inspection import Inspector

TOKEN = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"
AWS_KEY = "AKIAZ7QX3P5L2M4N4KXJ"
CARD = "4539578763621486"
NOTE = "an ordinary note about the weather, 21 degrees and dry"

OBFUSCATIONS = {
    "reversed": lambda d: d[::-1].encode(),
    "rot13": lambda d: codecs.encode(d, "rot13").encode(),
    "spaced": lambda d: " ".join(d).encode(),
    "dashed": lambda d: "-".join(d).encode(),
    "one per line": lambda d: "\n".join(d).encode(),
    "zero-width": lambda d: "\u200b".join(d).encode(),
    "fullwidth": lambda d: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in d).encode(),
    "octal": lambda d: "".join("\\%03o" % ord(c) for c in d).encode(),
    "quoted-printable": lambda d: "".join("=%02X" % ord(c) for c in d).encode(),
    "char codes": lambda d: str([ord(c) for c in d]).encode(),
    "chr() calls": lambda d: "+".join(f"chr({ord(c)})" for c in d).encode(),
    "bits": lambda d: " ".join(format(ord(c), "08b") for c in d).encode(),
    "utf-16-le": lambda d: d.encode("utf-16-le"),
    "utf-16 with a mark": lambda d: d.encode("utf-16"),
    "utf-16 in base64": lambda d: base64.b64encode(d.encode("utf-16-le")),
    "base64 in lines": lambda d: b"\n".join(base64.b64encode(d.encode())[i:i + 12] for i in range(0, 120, 12)),
}


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    return Inspector([], allow=["*.example.org"])


@pytest.mark.parametrize("name", OBFUSCATIONS)
@pytest.mark.parametrize("value", [TOKEN, AWS_KEY])
def test_an_obfuscated_credential_is_refused(inspector, name, value):
    body = OBFUSCATIONS[name](f"note {value} end")
    finding = inspector.inspect("x.example.org", 443, "/upload", [], body)
    assert finding is not None and finding.rule == "credential", (name, body[:80])


@pytest.mark.parametrize("name", OBFUSCATIONS)
def test_the_same_treatment_of_an_ordinary_note_passes(inspector, name):
    assert inspector.inspect("x.example.org", 443, "/upload", [], OBFUSCATIONS[name](NOTE)) is None


def test_a_reversed_card_number_is_refused_and_reversed_hashes_are_not(inspector):
    assert inspector.inspect("x.example.org", 443, "/p", [], f"pay {CARD[::-1]}".encode()).rule == "financial-data"
    hashes = b" ".join(base64.b16encode(bytes([n] * 20)).lower() for n in range(40))
    assert inspector.inspect("x.example.org", 443, "/p", [], hashes) is None


def test_ordinary_text_is_left_alone():
    prose = b"Version 1.2.3 of the tool, released 2024-05-06, fixes 14 bugs.\nSee the notes."
    assert [rewrite(prose) for rewrite in text_forms.REWRITINGS] == [None] * len(text_forms.REWRITINGS)

