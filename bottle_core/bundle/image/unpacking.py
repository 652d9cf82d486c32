"""Compressed containers opened for inspection: what an agent compressed before sending is read as sent.

Recognised by their magic bytes: gzip and zlib, bzip2, xz and lzma, zip (its
members, each read), and zstd (with the ``zstandard`` module mitmproxy
brings; brotli, which has no magic and no bounded decoder in the release the
image has, is not tried). Raw deflate has no
magic; it is tried on binary data and kept only when it reads as text.
Everything is bounded by ``budget`` bytes of output: more than that is an
:class:`Overflow` (the caller refuses), never a pass.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile
import zlib

try:
    import zstandard
except ImportError:  # outside the bundle image: zstd stays closed
    zstandard = None

ZLIB_SECOND = (b"\x01", b"\x5e", b"\x9c", b"\xda")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: At most this many members of a zip are read (more is a limit reached).
MAX_MEMBERS = 256


class Overflow(Exception):
    """The container opens to more than the budget allows."""


def is_container(data: bytes) -> bool:
    """Whether ``data`` starts like a container this module opens (raw deflate aside)."""
    return (data[:2] == b"\x1f\x8b" or (data[:1] == b"\x78" and data[1:2] in ZLIB_SECOND) or data[:3] == b"BZh"
            or data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00" or data[:4] == b"PK\x03\x04"
            or (zstandard is not None and data[:4] == ZSTD_MAGIC))


def unpacked(data: bytes, budget: int, *, texty=None) -> list[bytes]:
    """The content of the container ``data`` is (a zip's members each), or [] when it is none (or does not open).

    :param texty: a test for text; given, raw deflate is tried on data without a known magic and kept when the
        result passes it.
    """
    try:
        if data[:2] == b"\x1f\x8b" or (data[:1] == b"\x78" and data[1:2] in ZLIB_SECOND):
            out = _bounded(zlib.decompressobj(zlib.MAX_WBITS | 32), data, budget)
        elif data[:3] == b"BZh":
            out = _bounded(bz2.BZ2Decompressor(), data, budget)
        elif data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
            out = _bounded(lzma.LZMADecompressor(), data, budget)
        elif data[:4] == b"PK\x03\x04":
            return _unzip(data, budget)
        elif zstandard is not None and data[:4] == ZSTD_MAGIC:
            out = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read(budget + 1)
            if len(out) > budget:
                raise Overflow("compressed data opens past the decoding budget")
        elif texty is not None and len(data) >= 8:
            out = _bounded(zlib.decompressobj(-zlib.MAX_WBITS), data, budget)
            out = out if out and texty(out) else None
        else:
            out = None
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError, *((zstandard.ZstdError,) if zstandard is not None else ())):
        return []  # not what its magic said (or encrypted): searched as the bytes it is
    return [out] if out else []


def _bounded(decompressor, data: bytes, budget: int) -> bytes | None:
    if isinstance(decompressor, type(zlib.decompressobj())):
        out = decompressor.decompress(data, budget)
        if decompressor.unconsumed_tail:
            raise Overflow("compressed data opens past the decoding budget")
        return out or None
    out = decompressor.decompress(data, max_length=budget)
    if not decompressor.eof and not decompressor.needs_input:
        raise Overflow("compressed data opens past the decoding budget")
    return out or None


def _unzip(data: bytes, budget: int) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Overflow(f"a zip of more than {MAX_MEMBERS} members")
        parts = []
        for member in members:
            if member.is_dir():
                continue
            with archive.open(member) as handle:
                content = handle.read(budget + 1)
            budget -= len(content)
            if budget < 0:
                raise Overflow("a zip that opens past the decoding budget")
            if content:
                parts.append(content)
    return parts
