"""Compressed containers are opened for inspection, within the decoding budget."""

import base64
import bz2
import gzip
import io
import lzma
import os
import zipfile
import zlib

import pytest
import zstandard

from bottle_core.bundle.image import unpacking
from bottle_core.bundle.image.inspection import Inspector

TOKEN = ("ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE").encode()


def zipped(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("notes/a.txt", b"nothing here")
        archive.writestr("notes/b.txt", content)
    return buffer.getvalue()


PACKERS = {
    "gzip": gzip.compress, "zlib": zlib.compress, "raw deflate": lambda d: zlib.compress(d)[2:-4],
    "bzip2": bz2.compress, "xz": lzma.compress, "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "zip": zipped, "gzip in gzip": lambda d: gzip.compress(gzip.compress(d)),
    "bzip2 in base64": lambda d: base64.b64encode(bz2.compress(d)),
    "xz in zip": lambda d: zipped(lzma.compress(d)),
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}


@pytest.mark.parametrize("packing", PACKERS)
def test_a_credential_compressed_any_way_is_found(packing):
    body = PACKERS[packing](b"the note: " + TOKEN)
    finding = Inspector([], allow=["x.test"]).inspect("x.test", 443, "/", [], body)
    assert finding is not None and finding.rule == "credential", packing


@pytest.mark.parametrize("packing", PACKERS)
def test_ordinary_text_compressed_passes(packing):
    body = PACKERS[packing](b"an ordinary upload of notes, nothing secret in it\n" * 50)
    assert Inspector([], allow=["x.test"]).inspect("x.test", 443, "/", [], body) is None


def test_a_bomb_is_a_limit_not_a_pass():
    zeros = b"\0" * (40 << 20)
    for bomb in (bz2.compress(zeros), lzma.compress(zeros), zipped(zeros), zstandard.ZstdCompressor().compress(zeros)):
        finding = Inspector([], allow=["x.test"]).inspect("x.test", 443, "/", [], bomb)
        assert finding is not None and finding.rule == "inspection-limit"


def test_random_bytes_and_broken_containers_are_read_as_the_bytes_they_are():
    noise = os.urandom(4096)
    assert unpacking.unpacked(noise, 1 << 20, texty=lambda _: False) == []
    assert unpacking.unpacked(b"BZh9" + noise, 1 << 20) == []
    assert unpacking.unpacked(b"PK\x03\x04" + noise, 1 << 20) == []
    assert Inspector([], allow=["x.test"]).inspect("x.test", 443, "/", [], b"BZh9" + noise) is None
