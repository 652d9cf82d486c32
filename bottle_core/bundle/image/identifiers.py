"""Identifiers worth refusing in a request: payment card numbers, IBANs, Bitcoin addresses, US social security numbers.

A run of digits or letters is only called one of these when its checksum
holds (Luhn, ISO 7064 mod 97-10, base58check or bech32), which a random id
passes rarely; card numbers must also start as an issuer's do and have an
issuer's length. A US social security number is only called one written
the way people write it (``AAA-GG-SSSS``) and valid by the SSA's rules (no
area 000, 666 or 900+, no group 00, no serial 0000). The checks are python-stdnum's (Debian ``python3-stdnum``,
which the bundle image installs) when it is installed; without it, the same
published algorithms in a few lines stand in, less the per-country lengths of
IBANs and the known advertising SSNs (so without it more look-alikes pass the
IBAN check: an ISO 11649 creditor reference ``RF…`` is one).

:func:`find_identifier` is the one entry point.
"""

from __future__ import annotations

import hashlib
import re

try:  # python-stdnum: maintained validators for standard numbers
    from stdnum import iban as _iban
    from stdnum import luhn as _luhn
except ImportError:  # pragma: no cover - the bundle image installs python3-stdnum
    _iban = _luhn = None
try:
    from stdnum import bitcoin as _bitcoin
except ImportError:  # pragma: no cover - python-stdnum before 1.17
    _bitcoin = None
try:
    from stdnum.us import ssn as _ssn
except ImportError:  # pragma: no cover - the bundle image installs python3-stdnum
    _ssn = None

#: Card brands: each network's published issuer prefixes (IIN ranges) and its card lengths. Maestro is read by
#: the ranges its issuers use (5018, 5020, 5038, 5893, 6304, 6759, 6761-6763: 12 to 19 digits), not by the whole
#: 50 and 56-69 space ISO reserves for it, which too many other numbers start with.
CARD_BRANDS = (
    ("visa", r"4\d{12}(?:\d{3}){0,2}"),
    ("mastercard", r"(?:5[1-5]\d\d|2(?:2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))\d{12}"),
    ("american-express", r"3[47]\d{13}"),
    ("diners-club", r"3(?:0[0-5]|[68]\d)\d{11,16}"),
    ("discover", r"6(?:011|5\d\d|4[4-9]\d)\d{12,15}"),
    ("jcb", r"35(?:2[89]|[3-8]\d)\d{12,15}"),
    ("unionpay", r"62\d{14,17}"),
    ("maestro", r"(?:5018|5020|5038|5893|6304|6759|676[1-3])\d{8,15}"),
    ("mir", r"220[0-4]\d{12,15}"),
    ("dankort", r"5019\d{12}"),
)
_CARD_ISSUER = re.compile("^(?:" + "|".join(regex for _, regex in CARD_BRANDS) + ")$")
#: 12 to 19 digits, optionally in groups of 4 (or 4-6-5) split by one space, '+' (a form's space) or dash each.
CARD = re.compile(r"(?<![0-9A-Za-z.:_-])(\d{4}(?:[ +-]?\d{4}){2}(?:[ +-]?\d{1,7})?|\d{4}[ +-]\d{6}[ +-]\d{4,5})"
                  r"(?![0-9A-Za-z_]|[.,/:-]\d)")  # not part of a longer number, word or hex string
#: A country code (upper case: a lower-case one starts too many hex ids), two check digits, then 11 to 30
#: letters (in one case, either: the check reads them upper-cased)
#: and digits in groups of any size split by one space, '+', dot or dash each (as people and forms write them).
IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}[ ]?\d{2}(?:[ +.\-]?[A-Za-z0-9]){11,30})(?![A-Za-z0-9])")
_IBAN_GROUPS = re.compile(r"[ +.\-]")
BITCOIN = re.compile(r"(?<![A-Za-z0-9])([13][1-9A-HJ-NP-Za-km-z]{25,34}|(?:bc|BC)1[02-9ac-hj-np-zAC-HJ-NP-Z]{11,71})"
                     r"(?![A-Za-z0-9])")
SSN = re.compile(r"(?<![\w.:/-])(\d{3}-\d{2}-\d{4})(?![\w.:/-]|-\d)")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that card numbers carry."""
    if _luhn is not None:
        return _luhn.is_valid(digits)
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_number(text: str) -> bool:
    """A payment card number: an issuer's prefix and length, and the Luhn check."""
    digits = re.sub(r"[ +-]", "", text)
    return bool(_CARD_ISSUER.match(digits)) and luhn_valid(digits)


def iban_in(text: str) -> bool:
    """An IBAN at the start of ``text``: the whole, or the whole less some trailing groups (words that followed)."""
    groups = _IBAN_GROUPS.split(text)
    for end in range(len(groups), 0, -1):
        compact = "".join(groups[:end])
        if len(compact) < 15:
            return False
        body = compact[4:]
        if body.upper() != body and body.lower() != body:
            continue  # letters of both cases: base64, not an account number written in either case
        if iban_valid(compact):
            return True
    return False


def iban_valid(compact: str) -> bool:
    """An IBAN without separators: a known country's length and the mod 97-10 check."""
    if _iban is not None:
        return _iban.is_valid(compact)
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _bech32(text: str) -> bool:
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    text = text.lower()
    hrp, _, data = text.rpartition("1")
    if hrp != "bc" or len(data) < 6 or any(c not in charset for c in data):
        return False
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + [charset.index(c) for c in data]
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for bit, gen in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            check ^= gen if (top >> bit) & 1 else 0
    return check in (1, 0x2BC830A3)  # bech32, bech32m


def _base58check(text: str) -> bool:
    number = 0
    for char in text:
        number = number * 58 + B58.index(char)
    raw = b"\0" * (len(text) - len(text.lstrip("1"))) + number.to_bytes((number.bit_length() + 7) // 8, "big")
    return len(raw) == 25 and hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]


def bitcoin_address(text: str) -> bool:
    """A Bitcoin address: base58check (P2PKH, P2SH) or bech32/bech32m (segwit), checksum verified."""
    if _bitcoin is not None:
        return _bitcoin.is_valid(text)
    return _bech32(text) if text.lower().startswith("bc1") else _base58check(text)


def ssn_valid(text: str) -> bool:
    """A US social security number by the SSA's rules (python-stdnum also refuses the numbers known to be
    advertising samples)."""
    if _ssn is not None:
        return _ssn.is_valid(text)
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_CHECKS = (("card-number", CARD, ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), card_number),
           ("iban", IBAN, (), iban_in),
           ("bitcoin-address", BITCOIN, ("1", "3", "bc1"), bitcoin_address),
           ("us-ssn", SSN, ("-",), ssn_valid))


def find_identifier(text: str, lowered: str) -> str | None:
    """The name of the first checksummed identifier in ``text`` (``lowered`` is it in lower case), or None."""
    for name, regex, anchors, valid in _CHECKS:
        if anchors and not any(anchor in lowered for anchor in anchors):
            continue
        for match in regex.finditer(text):
            if valid(match.group(1)):
                return name
    return None
