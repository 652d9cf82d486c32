"""Text rewritten the ways a trivial obfuscation undoes: the forms inspection reads besides the encoders'.

Each function takes the bytes of one view and returns its rewritten form, or
None when the form is not there (so a view with nothing of the kind costs one
search). None of them decodes data into more data than it was: they only
take characters away or map one character to one, so they add no budget.

* :func:`compatibility` — Unicode's compatibility forms folded (fullwidth
  ``ｇｈｐ＿`` is ``ghp_``) and invisible format characters taken out
  (zero-width spaces and joiners between the characters of a value).
* :func:`interleaved` — one character, one separator, over and over
  (``g h p _``, ``g-h-p-_``, one character per line): the separators dropped.
* :func:`wrapped_base64` — base64 broken into lines (MIME, PEM): the lines
  joined, so a value the break cut in two is decoded whole.
* :func:`escapes` — octal escapes (``\\147``) and quoted-printable runs
  (``=67=68``), which the percent and backslash decoders do not read.
* :func:`char_codes` — a list of character codes (``[103, 104, 112]``,
  ``chr(103)+chr(104)``, ``0b01100111 …``) as the characters they name.
* :func:`utf16` — runs of UTF-16 text (a zero byte beside each character) as their characters.
* :func:`mirrored` — the runs of a token's alphabet reversed and rotated by
  13 letters, so a value sent backwards or in ROT13 still shows its shape.
"""

from __future__ import annotations

import re
import unicodedata

#: Characters a value's characters can be interleaved with (one of them, the same each time).
_INTERLEAVED = re.compile(rb"[!-~]([ \t\n.:,;|/\\_-])(?:[!-~]\1){7,}[!-~]")
#: Lines of base64 (at least two), the first at least 8 characters, starting a line or after a quote or '=' and
#: ending one; the last line may be short and padded. Possessive, and starting where a run starts: a long run
#: with no line break costs one pass, not one per character.
_WRAPPED = re.compile(rb"(?:^|(?<=[\s\"'=:>(\[,]))[A-Za-z0-9+/]{8,}+(?:\r?\n[ \t]*+[A-Za-z0-9+/]{2,}+)++={0,2}"
                      rb"(?![A-Za-z0-9+/=._-])")
_OCTAL = re.compile(rb"(?:\\[0-3][0-7]{2}){4,}")
_QUOTED_PRINTABLE = re.compile(rb"(?:=[0-9A-F]{2}){4,}")
#: A printable character's code in decimal (32-126), not part of a longer number.
_CODE = rb"(?<![\d.])(?:3[2-9]|[4-9]\d|1[01]\d|12[0-6])(?![\d.])"
#: Eight or more codes with short separators between them (', ', ')+chr(', ' ').
_CODES = re.compile(_CODE + rb"(?:[^\d\n]{1,8}?" + _CODE + rb"){7,}")
_CODE_ONE = re.compile(_CODE)
_BITS = re.compile(rb"(?<![01])(?:0b)?[01]{8}(?:[ ,;]+(?:0b)?[01]{8}){7,}(?![01])")
_UTF16_LE = re.compile(rb"(?:[\t\n\r -~]\x00){8,}")
_UTF16_BE = re.compile(rb"(?:\x00[\t\n\r -~]){8,}")
#: A run of a token's alphabet, whole (a longer run is data, not a value: its forward form is not matched either).
_TOKEN_RUN = re.compile(rb"(?<![A-Za-z0-9+/_\-.])[A-Za-z0-9+/_\-.]{16,512}+(?![A-Za-z0-9+/_\-.])")
_HEXISH = re.compile(rb"[0-9a-f\-]+")
_ROT13 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                         b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")


def compatibility(data: bytes) -> bytes | None:
    """``data`` with compatibility characters folded (NFKC) and format characters (Cf) removed."""
    if data.isascii():
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    folded = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")
    return folded.encode("utf-8") if folded != text else None


def interleaved(data: bytes) -> bytes | None:
    """Runs of single characters with one separator between each, the separators dropped."""
    out, count = _INTERLEAVED.subn(lambda m: m.group()[::2], data)
    return out if count else None


def wrapped_base64(data: bytes) -> bytes | None:
    """Base64 broken into lines, joined."""
    if b"\n" not in data:
        return None
    out = _WRAPPED.sub(_joined_if_fixed_width, data)
    return out if out != data else None


def _joined_if_fixed_width(match: re.Match) -> bytes:
    """Lines of one width (the last no longer) joined: base64 as an encoder wraps it; words that happen to be
    in base64's alphabet, one per line, are left as they are."""
    lines = match.group().split(b"\n")
    widths = {len(line.strip()) for line in lines[:-1]}
    if len(widths) != 1 or len(lines[-1].strip()) > widths.pop():
        return match.group()
    return b"".join(line.strip() for line in lines)


def escapes(data: bytes) -> bytes | None:
    """Octal escapes and quoted-printable runs as the bytes they stand for."""
    out = data
    if b"\\" in out:
        out = _OCTAL.sub(lambda m: bytes(int(m.group()[i + 1:i + 4], 8) for i in range(0, len(m.group()), 4)), out)
    if b"=" in out:
        out = _QUOTED_PRINTABLE.sub(lambda m: bytes.fromhex(m.group().replace(b"=", b"").decode()), out)
    return out if out != data else None


def char_codes(data: bytes) -> bytes | None:
    """Lists of decimal character codes, and of 8-bit binary numbers, as the characters they name."""
    out = _CODES.sub(lambda m: bytes(int(code) for code in _CODE_ONE.findall(m.group())), data)
    if b"0" in out and b"1" in out:
        out = _BITS.sub(lambda m: bytes(int(bits[-8:], 2) for bits in re.findall(rb"(?:0b)?[01]{8}", m.group())), out)
    return out if out != data else None


def utf16(data: bytes) -> bytes | None:
    """Runs of UTF-16 text (printable ASCII, each with a zero byte before or after it) as their characters."""
    if b"\x00" not in data:
        return None
    out = _UTF16_LE.sub(lambda m: m.group()[::2], data)
    out = _UTF16_BE.sub(lambda m: m.group()[1::2], out)
    return out if out != data else None


def mirrored(data: bytes) -> bytes | None:
    """The runs of a token's alphabet in ``data``, each reversed and each rotated by 13 letters, one per line."""
    # Each once, in order; hashes and UUIDs (lowercase hex) carry no shape backwards, except a card's digits.
    runs = [run for run in dict.fromkeys(_TOKEN_RUN.findall(data))
            if not _HEXISH.fullmatch(run) or (run.isdigit() and len(run) <= 19)]
    if not runs:
        return None
    joined = b"\n".join(runs)
    return joined[::-1] + b"\n" + joined.translate(_ROT13)


#: The rewritings applied to every readable view, in order (each reads the previous one's output).
REWRITINGS = (utf16, compatibility, escapes, char_codes, wrapped_base64, interleaved)
