"""Content inspection of requests: what the agent tries to send out, judged before any secret is swapped in.

A request is taken apart into the places data can ride in (the host's
labels, the URL, each header, the body) and every place is looked at in the
forms an encoder would leave it in: as sent; normalised to a fixed point
(percent-encoding undone until nothing changes, escapes resolved, delimited
hex joined, then the trivial obfuscations of ``text_forms`` undone: UTF-16,
fullwidth and zero-width characters, octal and quoted-printable, character
codes, base64 in lines, interleaved separators; token runs read reversed and
in ROT13); and with every base64, base32 and hex run inside it decoded,
and compressed containers opened (``unpacking``), three layers deep. Past its bounds (encoded runs,
decoded bytes, nesting) a request is refused, never passed unread. Rules:

``secret-value``
    the value of a secret the bottle knows (a manifest secret, the model key,
    or the placeholder standing for one), whole, as a fragment of 17
    characters or more, reversed, base64 in each of its three alignments, hex
    or URL-encoded, or in pieces spread over JSON fields, query or form values
    or headers, to a host that secret is not bound to.
``credential``
    a well-known credential shape (:data:`PATTERNS`: bottle's own table, and
    every rule of gitleaks' published rule set, generated into
    ``inspection_catalogue`` and read by :class:`CatalogueRule`), to any host but the ones
    a manifest secret whose value has that shape is bound to. Judged by shape,
    never by costume: ``EXAMPLE`` or ``your`` glued on changes nothing; only
    a value that carries nothing (:func:`filler`) passes. A value with no
    provider's shape is judged by the name it is kept under and its length
    and alphabet (:mod:`inspection_names`, ``credential-assignment``).
``financial-data``, ``personal-data``
    a payment card number, IBAN or Bitcoin address, checksum verified; a US
    social security number by the SSA's rules (``identifiers``).
``subdomain-data``
    labels of the host name, below an allow-list wildcard, that together
    carry encoded data rather than a name.
``inspection-limit``
    a request that needs more decoding than the bounds allow.

Standard library only, plus the BIP-39 English word list that Debian's
``python3-mnemonic`` ships (a stricter seed-phrase test, and the letter pairs
of English words; without it a heuristic stands in) and ``python3-stdnum``
(through ``identifiers``). :class:`Inspector` is the one entry point.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import hashlib
import html
import json
import re
import warnings
import string
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

from .hosts import Unbound, entropy
from . import inspection_catalogue as catalogue
from . import text_forms, unpacking
from .identifiers import find_identifier
from . import inspection_hashes as hashes
from . import inspection_names as named

#: Placeholders are recognisable: the agent's own, never a credential by shape.
PLACEHOLDER_MARK = "bottle-placeholder-"
#: Bounds that keep a hostile body from making inspection slow.
MAX_DECODED = 32 * 1024 * 1024
MAX_DEPTH = 3
MAX_RUNS = 50_000
#: A secret shorter than this is matched whole only (a fragment that short would match anything).
FRAGMENT = 17
MIN_SECRET = 6


@dataclass(frozen=True)
class Finding:
    """Why a request is refused: the rule, what matched (a secret's or a pattern's name, never the value) and where."""

    rule: str
    name: str
    where: str

    def reason(self) -> str:
        what = {"secret-value": f"secret {self.name}", "credential": f"a credential ({self.name})",
                "financial-data": f"financial data ({self.name})", "personal-data": f"personal data ({self.name})",
                "subdomain-data": "encoded data",
                "inspection-limit": f"more than inspection reads ({self.name})"}.get(self.rule, self.name)
        return f"{what} in the {self.where}"


# --- spans ----------------------------------------------------------------------------------------


def merged_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` (start, end) sorted, with those that overlap or touch joined into one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# --- decoding: every form a value can take ----------------------------------------------------------

#: One pass finds every run that may be encoded data; each is then decoded as what its alphabet allows.
ENCODED_RUN = re.compile(rb"[A-Za-z0-9+/_\-]{16,}={0,6}")
PERCENT = re.compile(rb"%[0-9A-Fa-f]{2}")
_HEX_ONLY = re.compile(rb"^[0-9a-fA-F]+$")
_HEX_DASHED = re.compile(rb"^[0-9a-fA-F]+(?:-[0-9a-fA-F]+)+$")
HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}){8,}")
_B32_ONLY = re.compile(rb"^(?:[A-Z2-7]+|[a-z2-7]+)=*$")
ESCAPES = re.compile(rb"(?:\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|&#x?[0-9a-fA-F]{2,5};){4,}")


_UNPRINTABLE = bytes(b for b in range(256) if not (32 <= b < 127 or b in (9, 10, 13) or b >= 0xC2))


def texty(data: bytes) -> bool:
    """Mostly printable: worth pattern matching (binary is still searched for secret values)."""
    if not data:
        return False
    sample = data[:4096]
    return len(sample.translate(None, _UNPRINTABLE)) >= 0.9 * len(sample)


def _b64(run: bytes) -> bytes | None:
    body = run.rstrip(b"=")
    if len(body) % 4 == 1:
        body = body[:-1]
    padded = body + b"=" * (-len(body) % 4)
    try:
        if b"-" in body or b"_" in body:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b32(run: bytes) -> bytes | None:
    body = run.rstrip(b"=").upper()
    body = body[: len(body) - len(body) % 8] if len(body) % 8 in (1, 3, 6) else body
    try:
        return base64.b32decode(body + b"=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None


def _hex(run: bytes) -> bytes | None:
    return bytes.fromhex(run.decode("ascii")) if len(run) % 2 == 0 else None


def _unescape(data: bytes) -> bytes:
    text = data.decode("latin-1")
    if "&#" in text or "&" in text and ";" in text:
        text = html.unescape(text)
    if "\\x" in text or "\\u" in text or "\\\"" in text:
        try:
            with warnings.catch_warnings():  # an unknown escape (\q) is kept as written, which is what is wanted
                warnings.simplefilter("ignore", DeprecationWarning)
                text = codecs.decode(text, "unicode_escape")
        except (UnicodeDecodeError, ValueError):
            pass
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


class InspectionLimit(Exception):
    """A request asks for more decoding than inspection does: it is refused, never let through unread."""


def _unpacked(data: bytes, raw_deflate: bool = False) -> list[bytes]:
    """A compressed container's content (``unpacking``), up to the decoding budget (past it: a limit reached)."""
    try:
        return unpacking.unpacked(data, MAX_DECODED, texty=texty if raw_deflate else None)
    except unpacking.Overflow as overflow:
        raise InspectionLimit(str(overflow)) from None


def _decodings(run: bytes) -> list[bytes]:
    """What a run of base64/base32/hex-alphabet characters decodes to, each way its alphabet allows."""
    if _HEX_ONLY.match(run):
        attempts = [(_hex, run)]
    elif _HEX_DASHED.match(run):  # a UUID or dash-grouped hex: hex, not base64 (which would need four tries)
        attempts = [(_hex, run.replace(b"-", b""))]
    else:
        attempts = [(_b64, run)]
        attempts += [(_hex, inner.group()) for inner in HEX_RUN.finditer(run)]
        if _B32_ONLY.match(run):
            attempts.append((_b32, run))
        plain = _b64(run)
        if len(run) < 4096 and not (plain and texty(plain)):
            # base64 that starts mid-group (a prefix glued on): the other three alignments
            attempts += [(_b64, run[shift:]) for shift in (1, 2, 3)]
    results = []
    for decode, text in attempts:
        try:
            decoded = decode(text)
        except ValueError:
            decoded = None
        if not decoded or len(decoded) < 8:
            continue
        magic = decoded.find(b"\x1f\x8b\x08", 0, 16)  # gzip after a few bytes of header glued on
        packed = decoded[magic:] if magic >= 0 else decoded if unpacking.is_container(decoded) else None
        if packed is not None:
            inner = _unpacked(packed)
            results += inner[1:]
            decoded = inner[0] if inner else decoded
        elif text is not run and decode is _b64 and not texty(decoded):
            continue  # a shifted decoding is kept only when it reads as text
        results.append(decoded)
    return results


#: Hex bytes split by a delimiter ('41-4b-49', '41:4b', '0x41, 0x4b', '41 4b'): eight bytes or more.
DELIMITED_HEX = re.compile(rb"(?<![0-9A-Za-z])(?:(?:0x)?[0-9a-fA-F]{2}(?:[-:., ]|, ?)){7,}(?:0x)?[0-9a-fA-F]{2}"
                           rb"(?![0-9a-fA-F])")
_HEX_DELIMS = re.compile(rb"0x|[-:., ]")
PERCENT_ROUNDS = 4


def normal_forms(data: bytes) -> list[bytes]:
    """``data`` rewritten the ways a decoder reads text, each to a fixed point (same depth: nothing is decoded yet).

    Percent-encoding is undone until nothing changes ('%252541' is three
    layers of one 'A'); delimited hex is joined into plain hex; escapes and
    entities are resolved. Each form is then searched for encoded runs.
    """
    forms: list[bytes] = []
    current = data
    if b"%" in current and PERCENT.search(current):
        for _ in range(PERCENT_ROUNDS):
            once = unquote_to_bytes(current.replace(b"+", b" "))
            if once == current:
                break
            forms.append(once)
            current = once
        else:
            if PERCENT.search(current):
                raise InspectionLimit("percent-encoding nested deeper than inspection undoes")
    if b'\\"' in current or (b"\\x" in current or b"\\u" in current or b"&#" in current) and ESCAPES.search(current):
        unescaped = _unescape(current)
        if unescaped != current:
            forms.append(unescaped)
            current = unescaped
    if DELIMITED_HEX.search(current):
        joined = DELIMITED_HEX.sub(lambda m: _HEX_DELIMS.sub(b"", m.group()), current)
        if joined != current:
            coded = text_forms.char_codes(current)  # '65, 75, 73' reads as hex bytes and as decimal codes: keep both
            if coded is not None:
                forms.append(coded)
            forms.append(joined)
            current = joined
    for rewrite in text_forms.REWRITINGS:  # UTF-16, and the trivial obfuscations: folded, interleaved, wrapped, coded
        rewritten = rewrite(current)
        if rewritten is not None:
            forms.append(rewritten)
            current = rewritten
    return forms


def _still_encoded(data: bytes) -> bool:
    """A run in ``data`` that decodes to more readable text: one more layer than inspection reads."""
    for count, match in enumerate(ENCODED_RUN.finditer(data)):
        if count >= 64:
            return False
        if any(len(decoded) >= 12 and texty(decoded) for decoded in _decodings(match.group())):
            return True
    return False


def decoded_views(data: bytes, depth: int = 0, budget: list[int] | None = None) -> Iterator[bytes]:
    """``data`` and everything an encoder could have made of a value inside it, decoded (bounded in size and depth).

    Raises :class:`InspectionLimit` when a bound is reached with data still
    undecoded: the caller refuses rather than passes what it could not read.
    """
    budget = budget if budget is not None else [MAX_DECODED]
    yield data
    readable = texty(data)
    if readable and (mirror := text_forms.mirrored(data)) is not None:
        yield mirror  # a value sent backwards or in ROT13 still shows its shape; not decoded further
    if depth and not readable and text_forms.utf16(data) is None:
        # Decoded binary is searched for secret values, not decoded further, unless it is a container.
        if unpacking.is_container(data):
            if depth >= MAX_DEPTH:
                raise InspectionLimit(f"data encoded more than {MAX_DEPTH} layers deep")
            for inner in _unpacked(data):
                budget[0] -= len(inner)
                if budget[0] < 0:
                    raise InspectionLimit(f"more than {MAX_DECODED // (1024 * 1024)} MB decoded")
                yield from decoded_views(inner, depth + 1, budget)
        return
    forms = normal_forms(data)
    yield from forms
    if depth >= MAX_DEPTH:
        if any(_still_encoded(form) for form in (data, *forms)):
            raise InspectionLimit(f"data encoded more than {MAX_DEPTH} layers deep")
        return
    found: list[bytes] = []
    if not readable:
        found += _unpacked(data, raw_deflate=depth == 0)
    runs = [ENCODED_RUN.findall(form) for form in (data, *forms)]
    if sum(map(len, runs)) > MAX_RUNS:  # counted before any is decoded: a refusal costs little
        raise InspectionLimit(f"more than {MAX_RUNS} encoded runs")
    for form_runs in runs:
        for run in form_runs:
            # A path or a prefix glued to the data shifts it: try the slash-separated segments too.
            split = b"/" in run and len(run) < 4096
            candidates = [run] + ([part for part in run.split(b"/") if len(part) >= 16] if split else [])
            for candidate in candidates:
                found += _decodings(candidate)
    for view in found:
        budget[0] -= len(view)
        if budget[0] < 0:
            raise InspectionLimit(f"more than {MAX_DECODED // (1024 * 1024)} MB decoded")
        yield from decoded_views(view, depth + 1, budget)


# --- known secrets -------------------------------------------------------------------------------


def _b64_cores(value: bytes) -> set[bytes]:
    """The part of value's base64 that stays the same wherever the value sits in a longer base64 text.

    Base64 works in groups of three bytes, so the value can start at any of
    three offsets in a group; for each, encode with that many bytes before it
    and keep only the characters that depend on the value alone.
    """
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        start = (offset * 4 + 2) // 3  # characters touched by the leading pad
        end = ((offset + len(value)) // 3) * 4  # characters of whole groups only
        core = encoded[start:end]
        if len(core) >= 8:
            cores.add(core)
            cores.add(core.translate(bytes.maketrans(b"+/", b"-_")))
    return cores


@dataclass
class Known:
    """A value the bottle knows is secret, the hosts it may go to, and the byte strings that betray it."""

    name: str
    value: str
    hosts: list[str]
    needles: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        raw = self.value.encode()
        forms = {raw, raw[::-1], raw.hex().encode(), raw.hex().upper().encode(), *_b64_cores(raw)}
        # A placeholder's prefix says only a name: fragments come from its random tail.
        random_part = raw.rsplit(b"-", 1)[-1] if self.value.startswith(PLACEHOLDER_MARK) else raw
        if len(random_part) >= FRAGMENT + 6:
            # Any leaked run of FRAGMENT characters holds one of these windows (12 long, 6 apart).
            windows = {random_part[i:i + 12] for i in range(0, len(random_part) - 11, 6)}
            forms |= {w for w in windows if entropy(w.decode("utf-8", "replace")) >= 2.5}
        self.needles = tuple(sorted(forms, key=len, reverse=True))

    def found_in(self, view: bytes) -> bool:
        return any(needle in view for needle in self.needles)

    def covered_by(self, pieces: Iterable[str]) -> bool:
        """True when pieces that are each part of the value together cover most of it (a value split across fields)."""
        covered = [False] * len(self.value)
        for piece in pieces:
            if len(piece) >= 3 and piece != self.value:
                start = self.value.find(piece)
                if start >= 0:
                    covered[start:start + len(piece)] = [True] * len(piece)
        total = sum(covered)
        return total >= min(len(self.value), FRAGMENT) or total >= 0.8 * len(self.value) >= 8


# --- credential patterns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A credential shape: a cheap literal test first (any of ``anchors``, lower-case), then the regex."""

    name: str
    regex: re.Pattern
    anchors: tuple[str, ...]
    check: Callable[[re.Match], bool] | None = None  # a further test of the match (a checksum, its context)
    stand_ins: bool = True  # skip filler ('xxxx', '****'); off for a provider's prefix, see PROVIDER_SHAPES
    on_lowered: bool = False  # the regex reads the lower-cased text (faster than a case-blind regex)
    starts_token: bool = True  # the match must not continue a longer token
    gate: re.Pattern | None = None  # a cheap regex that must match first (where no literal anchor exists)

    def search(self, text: str, lowered: str) -> str | None:
        if self.anchors and not any(anchor in lowered for anchor in self.anchors):
            return None
        if self.gate is not None and not self.gate.search(text):
            return None
        for match in self.regex.finditer(lowered if self.on_lowered else text):
            glued = match.start() and match.string[match.start() - 1] in _TOKEN_CHARS
            if glued and self.starts_token:
                continue
            if not self.starts_token and _inside_blob(match.string, match.start(), match.end()):
                continue
            token = match.group(match.lastindex) if match.lastindex else match.group()
            if PLACEHOLDER_MARK in match.group().lower() or (self.stand_ins and filler(token)):
                continue
            if self.check is None or self.check(match):
                return token
        return None


_BLOB = frozenset(string.ascii_letters + string.digits + "+/=_-")


def _inside_blob(text: str, start: int, end: int) -> bool:
    """A match deep inside one long run of base64 characters (64 before it, 32 after): chance, not a credential.

    A prefixed shape may be glued to other text ('exampleAKIA…', '…EXAMPLE'), but
    a large upload's base64 holds every four-character prefix somewhere; a
    credential glued on both sides that deep inside such a run is read as part of it.
    """
    before, after = text[max(0, start - 64):start], text[end:end + 32]
    return len(before) == 64 and len(after) == 32 and all(c in _BLOB for c in before + after)


_B = ""  # a credential starts a token: checked in Pattern.search (a leading lookbehind would slow re down)
_E = r"(?![A-Za-z0-9_\-])"
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58check(match: re.Match) -> bool:
    token = match.group()
    number = 0
    for char in token:
        number = number * 58 + B58.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(token) - len(token.lstrip("1"))) + raw
    body, checksum = raw[:-4], raw[-4:]
    return len(raw) > 4 and hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] == checksum


def placeholder_like(token: str) -> bool:
    """Documentation stand-ins ('sk-xxxx', 'AKIAIOSFODNN7EXAMPLE', 'your-api-key') and bottle's placeholders.

    For responses and reports only: a request is judged by shape (:func:`filler`), never by how it is dressed.
    """
    lowered = token.lower()
    if PLACEHOLDER_MARK in lowered or "example" in lowered or "xxxx" in lowered or "your" in lowered:
        return True
    if "..." in token or "***" in token or "<" in token:
        return True
    body = re.sub(r"^[a-z]+[-_]", "", lowered)
    return len(body) >= 8 and entropy(body) < 2.5


def filler(token: str) -> bool:
    """A token that carries no data whatever its shape: bottle's own placeholder, or a body of one or two repeated
    characters ('sk-xxxxxxxx', 'AKIA****************'). A word in it ('EXAMPLE', 'your') changes nothing."""
    if PLACEHOLDER_MARK in token.lower() or "..." in token or "***" in token or "<" in token:
        return True
    body = re.sub(r"^(?:[A-Za-z0-9]{1,6}[-_.])+", "", token)
    return len(set(re.sub(r"[-_.]", "", body).lower())) <= 2


def _jwt_header(match: re.Match) -> bool:
    """A JSON Web Token's header decodes to a JSON object (a run that only starts like one is not a token). A token
    whose payload is not JSON (RFC 7515 lets it be any bytes; an encrypted token's parts are opaque) needs a header
    that names its algorithm, ``alg``, and a signature or ciphertext after the payload."""
    try:
        header = json.loads(base64.urlsafe_b64decode(match.group(1) + "=" * (-len(match.group(1)) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and (match.group(2) is None or "alg" in header)


def _generic_secret(token: str) -> bool:
    """Looks random enough to be a credential: long, mixed character classes, high entropy (not a time-based UUID)."""
    if named.TIME_UUID.match(token):
        return False
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return len(token) >= 16 and classes >= 2 and entropy(token) >= 3.5


#: A PEM's line ends as code and data write them ('\\n' in a JSON string), and what joins its lines there: blanks,
#: quotes, commas (a list of lines).
_PEM_ESCAPED_END = re.compile(r"\\+[nr]")
_PEM_GLUE = re.compile(r"[\s\"'`,]+")
#: The armour's own headers ('Proc-Type: 4,ENCRYPTED', 'DEK-Info: …', PGP's 'Version: …', 'Comment: …').
_PEM_HEADER = re.compile(r"(?m)^[ \t\"']*[A-Za-z][\w-]{1,30}:[ \t][^\n]*$")
#: The shortest private key's body in base64: Ed25519's in PKCS#8 (48 bytes) is 64 characters.
MIN_KEY_BODY = 64


def _key_body(match: re.Match) -> bool:
    """A private key's armour carries a key only with its body after it: 64 base64 characters or more, up to its
    END line, however its lines are written (escaped, quoted, in a list). The armour alone (a parser's constant,
    a document's heading), a redaction (``***``), filler, or a few words in base64 carry none."""
    rest = match.string[match.end():match.end() + 16384]
    end = rest.find("-----END")
    rest = _PEM_HEADER.sub("", _PEM_ESCAPED_END.sub("\n", rest[:end] if end >= 0 else rest))
    body = re.match(r"[A-Za-z0-9+/=]*", _PEM_GLUE.sub("", rest)).group()
    if len(body) < MIN_KEY_BODY or len(set(body.lower())) <= 2 or named.filled(body):
        return False
    try:
        decoded = base64.b64decode(body.rstrip("=") + "=" * (-len(body.rstrip("=")) % 4))
    except (ValueError, binascii.Error):
        return True  # not base64 as a whole: judged by its length and alphabet alone
    return not (decoded.isascii() and decoded.decode().isprintable())  # a key's bytes are no text


_KEY_WORDS = re.compile(r"(?i)(?:priv(?:ate)?[ _-]?key|secret[ _-]?key|wallet|privkey|signing[ _-]?key|seed)"
                        r"[^A-Za-z0-9]{1,25}(?:0x)?$")


def _wordlist() -> frozenset[str]:
    """BIP-39's English words, from the python3-mnemonic (Debian) or mnemonic (PyPI) package when there."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("mnemonic")
        if spec and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                path = Path(folder) / "wordlist" / "english.txt"
                if path.is_file():
                    return frozenset(path.read_text(encoding="utf-8").split())
    except (ImportError, OSError, ValueError):
        pass
    return frozenset()


BIP39 = _wordlist()
#: Common English words not in BIP-39: their presence marks prose, when the word list is missing.
_STOP = frozenset("the a an of to and is in it that for on with as this be are by or was at from not".split())
#: Words and what separates them; any separator but blanks, commas and '+' ends a run.
_WORDS = re.compile(r"[a-z]+|[^a-z \t\r\n,+]+")


def seed_phrase(match: re.Match) -> bool:
    """Twelve or more consecutive BIP-39 words (any seed phrase), or, without the list, of stop-word-free short words."""
    run = 0
    for word in _WORDS.findall(match.group()):
        ok = 3 <= len(word) <= 8 and (word in BIP39 if BIP39 else word.isalpha() and word not in _STOP)
        run = run + 1 if ok else 0
        if run >= 12:
            return True
    return False


# Each row: the provider's documented prefix or format; where a format is not documented, the rule
# follows the community rule sets of gitleaks (config/gitleaks.toml) and Yelp's detect-secrets plugins.
PATTERNS: tuple[Pattern, ...] = (
    Pattern("anthropic-key", re.compile(_B + r"sk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_\-]{20,}"), ("sk-ant-",),
            starts_token=False),
    Pattern("openai-key", re.compile(r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}|"
                                     r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"), ("sk-",), starts_token=False),
    Pattern("openai-key", re.compile(_B + r"sk-[A-Za-z0-9]{48,}"), ("sk-",)),
    # AWS's key-ID prefixes, and the older 'A3T' + one (as gitleaks reads them).
    Pattern("aws-access-key", re.compile(r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)"
                                         r"[A-Z2-7]{16}"),
            ("a3t", "akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "apka"),
            starts_token=False),
    Pattern("aws-secret-key", re.compile(r"(?i)aws.{0,20}?(?:secret|private)[a-z_\-]{0,20}[^A-Za-z0-9/+]{1,25}"
                                         r"(?-i:([A-Za-z0-9/+]{40}))(?![A-Za-z0-9/+])"), ("aws",), starts_token=False),
    Pattern("github-token", re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})"),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), starts_token=False),
    Pattern("slack-token", re.compile(_B + r"(?:xox[abeoprs]-(?:\d+-)?[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+"
                                      r"|hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/]{20,})"),
            ("xox", "xapp-", "hooks.slack.com"), starts_token=False),
    Pattern("google-api-key", re.compile(r"AIza[0-9A-Za-z_\-]{35}"), ("aiza",), starts_token=False),
    Pattern("google-oauth", re.compile(_B + r"(?:GOCSPX-[A-Za-z0-9_\-]{28}|ya29\.[0-9A-Za-z_\-]{30,}|1//0[0-9A-Za-z_\-]{40,})"),
            ("gocspx-", "ya29.", "1//0"), starts_token=False),
    Pattern("stripe-key", re.compile(_B + r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|" + _B + r"whsec_[0-9A-Za-z]{24,}"),
            ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"), starts_token=False),
    Pattern("private-key", re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"), ("private key",),
            _key_body),
    # A signed or encrypted token: its header, then a JSON payload, or an opaque one and at least one part more.
    Pattern("jwt", re.compile(_B + r"(eyJ[A-Za-z0-9_\-]{10,})\.(?:eyJ[A-Za-z0-9_\-]{10,}(?:\.[A-Za-z0-9_\-]*)?"
                              r"|(?!eyJ)([A-Za-z0-9_\-]{16,}(?:\.[A-Za-z0-9_\-]*)?\.[A-Za-z0-9_\-]{16,}))"), ("eyj",),
            _jwt_header),
    Pattern("discord-token", re.compile(r"(?<![A-Za-z0-9_\-])[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\."
                                        r"[A-Za-z0-9_\-]{27,}"), (), gate=re.compile(r"\.[A-Za-z0-9_\-]{6}\.")),
    Pattern("telegram-bot-token", re.compile(r"\d{8,10}:AA[A-Za-z0-9_\-]{32,33}(?![A-Za-z0-9_\-])"), (":aa",)),
    Pattern("azure-storage-key", re.compile(r"AccountKey=([A-Za-z0-9+/]{86}==)"), ("accountkey=",), starts_token=False),
    Pattern("npm-token", re.compile(_B + r"npm_[A-Za-z0-9]{36}"), ("npm_",), starts_token=False),
    Pattern("pypi-token", re.compile(_B + r"pypi-AgE[A-Za-z0-9_\-]{50,}"), ("pypi-age",), starts_token=False),
    Pattern("huggingface-token", re.compile(_B + r"hf_[A-Za-z]{34}" + _E), ("hf_",)),
    Pattern("twilio-key", re.compile(_B + r"SK[0-9a-f]{32}" + _E), ("sk",)),
    Pattern("sendgrid-key", re.compile(_B + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"), ("sg.",), starts_token=False),
    Pattern("bitcoin-wif-key", re.compile(r"[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}(?![1-9A-Za-z])"),
            (), _base58check),
    Pattern("crypto-extended-key", re.compile(r"[xyzuvtY]prv[1-9A-HJ-NP-Za-km-z]{100,112}"),
            ("prv",)),
    # The key's name first (a bare 64-hex string is as likely a hash): the regex starts where a name is, not
    # at every character of a long text.
    Pattern("crypto-private-key", re.compile(_KEY_WORDS.pattern[4:-1] + r"(?:0x)?([0-9a-f]{64}|[1-9a-z]{85,90})"
                                             r"(?![0-9a-z])"),
            ("priv", "secret", "wallet", "signing", "seed"), starts_token=False, on_lowered=True),
    Pattern("crypto-seed-phrase", re.compile(r"(?s).+"), (), seed_phrase, stand_ins=False, on_lowered=True,
            starts_token=False),
)

@dataclass(frozen=True)
class NamedCredential:
    """``credential-assignment``: a value kept under a credential's name, or under a provider's name alone
    (:data:`PROVIDER_NAMES`), judged by its length and alphabet (:mod:`inspection_names`), in the table beside the
    shapes."""

    name: str = "credential-assignment"
    anchors: tuple[str, ...] = ("key", "token", "secret", "pass", "pwd", "auth", "bearer", "credential", "access",
                                "private", "pat", "</", "-p", "/p:")

    def search(self, text: str, lowered: str) -> str | None:
        if any(anchor in lowered for anchor in self.anchors):
            found = named.find(text, lowered)
            if found:
                return found
        return named.find_provider(text, lowered, PROVIDER_NAMES)


#: Providers' names, as the catalogue's rules are named ('sendgrid-api-token': sendgrid), for a value kept under a
#: provider's name alone; words that name no provider (a rule for any text, for curl, for JWTs) left out.
PROVIDER_NAMES = frozenset(row[0].split("-")[0] for row in catalogue.RULES) - {
    "age", "curl", "defined", "generic", "jwt", "new", "private"}


#: More providers' documented token prefixes, as data: name, the prefix, the token's body after it, and the
#: literal(s) that must be in the text first. Prefix and body together are distinctive enough to be found glued
#: to other text ('example…', '…EXAMPLE'), like the table's own prefixed shapes, and rare enough in random
#: base64 (a prefix that base64 makes too often, like Square's 'EAAA', is left out); a prefix of four
#: characters or fewer must start a token, or long base64 would hold one by chance.
PREFIXED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("shopify-token", r"shp(?:at|ca|pa|ss)_", r"[a-fA-F0-9]{32}", ("shpat_", "shpca_", "shppa_", "shpss_")),
    ("digitalocean-token", r"do[opr]_v1_", r"[a-f0-9]{64}", ("doo_v1_", "dop_v1_", "dor_v1_")),
    ("linear-api-key", r"lin_api_", r"[A-Za-z0-9]{40}", ("lin_api_",)),
    ("notion-token", r"ntn_", r"[0-9]{11}[A-Za-z0-9]{32,35}", ("ntn_",)),
    ("databricks-token", r"dapi", r"[a-f0-9]{32}(?:-\d)?", ("dapi",)),
    ("doppler-token", r"dp\.(?:pt|st|sa|ct|scim|audit)\.", r"(?:[a-z0-9_\-]{1,32}\.)?[A-Za-z0-9]{40,44}", ("dp.",)),
    ("vault-token", r"hv[sb]\.", r"[A-Za-z0-9_\-]{24,}", ("hvs.", "hvb.")),
    ("postman-key", r"PMAK-", r"[a-f0-9]{24}-[a-f0-9]{34}", ("pmak-",)),
    ("grafana-token", r"glsa_", r"[A-Za-z0-9]{32}_[a-fA-F0-9]{8}", ("glsa_",)),
    ("grafana-token", r"glc_", r"eyJ[A-Za-z0-9_=+/\-]{32,}", ("glc_",)),
    ("newrelic-key", r"NRAK-", r"[A-Z0-9]{27}", ("nrak-",)),
    ("sentry-token", r"sntry[su]_", r"[A-Za-z0-9_=+/\-]{40,}", ("sntrys_", "sntryu_")),
    # Vercel's prefixed tokens: personal, integration, app access, refresh, API key.
    ("vercel-token", r"vc[pirak]_", r"[A-Za-z0-9]{32,}", ("vcp_", "vci_", "vca_", "vcr_", "vck_")),
    ("square-token", r"sq0(?:atp|csp)-", r"[A-Za-z0-9_\-]{22,}", ("sq0atp-", "sq0csp-")),
    ("atlassian-token", r"ATATT3", r"[A-Za-z0-9_=\-]{100,}", ("atatt3",)),
    ("age-secret-key", r"AGE-SECRET-KEY-1", r"[02-9AC-HJ-NP-Z]{58}", ("age-secret-key-1",)),
    ("planetscale-token", r"pscale_(?:tkn|pw|oauth)_", r"[A-Za-z0-9_=.\-]{32,64}", ("pscale_",)),
    ("rubygems-key", r"rubygems_", r"[a-f0-9]{48}", ("rubygems_",)),
    ("supabase-token", r"sbp_", r"[a-f0-9]{40}", ("sbp_",)),
    ("figma-token", r"figd_", r"[A-Za-z0-9_\-]{40,}", ("figd_",)),
    ("openrouter-key", r"sk-or-v1-", r"[a-f0-9]{64}", ("sk-or-v1-",)),
    ("groq-key", r"gsk_", r"[A-Za-z0-9]{52}", ("gsk_",)),
    ("xai-key", r"xai-", r"[A-Za-z0-9]{80}", ("xai-",)),
    ("replicate-token", r"r8_", r"[A-Za-z0-9]{37}", ("r8_",)),
    ("pulumi-token", r"pul-", r"[a-f0-9]{40}", ("pul-",)),
    ("nuget-key", r"oy2", r"[a-z0-9]{43}", ("oy2",)),
    ("terraform-token", r"[a-zA-Z0-9]{14}\.atlasv1\.", r"[A-Za-z0-9_=\-]{60,70}", (".atlasv1.",)),
    ("onepassword-token", r"ops_eyJ", r"[A-Za-z0-9+/]{250,}", ("ops_eyj",)),
    # JFrog Artifactory API keys start 'AKC' (JFrog's documented form, as Yelp's detect-secrets reads it): a
    # whole token of letters and digits, not a piece of base64 (after or before a '+' or '/').
    ("artifactory-key", r"(?<![+/])AKC", r"[A-Za-z0-9]{10,}(?![A-Za-z0-9_\-+/])", ("akc",)),
    # GitLab's documented token prefixes, each with the length GitLab generates (personal, deploy, feed, service
    # account, runner, feature flag client, workspace: 20 to 50; CI job: a partition then 20 to 50; incoming
    # mail: 25; pipeline trigger: 40; agent: 50 or more; OAuth application secret: 64), and runner registration.
    ("gitlab-token", r"gl(?:pat|dt|ft|soat|rt|rtr|ffct|wt)-", r"[A-Za-z0-9_\-]{20,50}" + _E,
     ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glrtr-", "glffct-", "glwt-")),
    ("gitlab-token", r"glcbt-", r"(?:[0-9a-fA-F]{2}_)?[A-Za-z0-9_\-]{20,50}" + _E, ("glcbt-",)),
    ("gitlab-token", r"glimt-", r"[A-Za-z0-9_\-]{25}" + _E, ("glimt-",)),
    ("gitlab-token", r"glptt-", r"[A-Za-z0-9_\-]{40}" + _E, ("glptt-",)),
    ("gitlab-token", r"glagent-", r"[A-Za-z0-9_\-]{50,1024}" + _E, ("glagent-",)),
    ("gitlab-token", r"gloas-", r"[A-Za-z0-9_\-]{64}" + _E, ("gloas-",)),
    ("gitlab-token", r"GR1348941", r"[A-Za-z0-9_\-]{20,50}" + _E, ("gr1348941",)),
    # Discord's older multi-factor user tokens.
    ("discord-token", r"mfa\.", r"[A-Za-z0-9_\-]{84}", ("mfa.",)),
    # AI and developer services' documented key prefixes: Tavily, StackHawk, Jina, NVIDIA, ElevenLabs, CircleCI's
    # personal and project tokens, Contentful's personal tokens, Sourcegraph Cody, HubSpot's private app tokens (a
    # region, then a UUID), PubNub's publish and secret keys (its subscribe key ships in clients), Teamwork's tokens
    # and Zoho's OAuth tokens (a data-centre number, then two hex runs).
    ("tavily-key", r"tvly-", r"(?:dev-|prod-)?[A-Za-z0-9]{32}" + _E, ("tvly-",)),
    ("stackhawk-key", r"hawk\.", r"[A-Za-z0-9_\-]{20}\.[A-Za-z0-9_\-]{20}" + _E, ("hawk.",)),
    ("jina-key", r"jina_", r"[A-Za-z0-9_\-]{50,}", ("jina_",)),
    ("nvidia-key", r"nvapi-", r"[A-Za-z0-9_\-]{64}" + _E, ("nvapi-",)),
    ("elevenlabs-key", r"sk_", r"[a-f0-9]{48}" + _E, ("sk_",)),
    ("circleci-token", r"CCI(?:PAT|PRJ)_", r"[A-Za-z0-9]{20,24}_[A-Za-z0-9]{40}" + _E, ("ccipat_", "cciprj_")),
    ("contentful-token", r"CFPAT-", r"[A-Za-z0-9_\-]{43}" + _E, ("cfpat-",)),
    ("sourcegraph-token", r"slk_", r"[a-f0-9]{64}" + _E, ("slk_",)),
    ("hubspot-token", r"pat-(?:na|eu|ap)\d-", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + _E,
     ("pat-",)),
    ("pubnub-key", r"(?:pub|sec)-c-", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + _E,
     ("pub-c-", "sec-c-")),
    ("teamwork-token", r"tkn\.v1_", r"[A-Za-z0-9+/]{60,}={0,2}", ("tkn.v1_",)),
    ("zoho-token", r"(?<![A-Za-z0-9.])1000\.", r"[a-f0-9]{32}\.[a-f0-9]{32}" + _E, ("1000.",)),
    # Cloud and data services' documented prefixes: Pinecone, OWASP Dependency-Track, Bitbucket Data Center's
    # HTTP access tokens, AWS AppSync's API keys and Amazon MWS auth tokens, Onfido's live tokens (a region, then two
    # parts), Fly.io's macaroons, New Relic's admin keys.
    ("pinecone-key", r"pcsk_", r"[A-Za-z0-9]{6}_[A-Za-z0-9]{63}" + _E, ("pcsk_",)),
    ("dependency-track-key", r"odt_", r"[A-Za-z0-9_]{32,40}" + _E, ("odt_",)),
    ("bitbucket-token", r"BBDC-", r"[A-Za-z0-9+/@_\-]{44}" + _E, ("bbdc-",)),
    ("appsync-key", r"da2-", r"[a-z0-9]{26}" + _E, ("da2-",)),
    ("amazon-mws-token", r"amzn\.mws\.", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + _E,
     ("amzn.mws.",)),
    ("onfido-token", r"api_(?:live|sandbox)(?:_[a-z]{2})?\.", r"[A-Za-z0-9_\-]{11}\.[A-Za-z0-9_\-]{32}" + _E,
     ("api_live", "api_sandbox")),
    ("flyio-token", r"FlyV1 fm[12][ar]?_", r"[A-Za-z0-9+/=,_\-]{64,}", ("flyv1 fm",)),
    ("newrelic-key", r"NRAA-", r"[a-f0-9]{27}" + _E, ("nraa-",)),
    # More services' documented key prefixes: Ionic's personal access tokens, Fleetbase's and Pagar.me's live and
    # test keys, Flexport's API tokens, Telnyx's API v2 keys, dfuse's API keys, Dropbox's short-lived access tokens,
    # and Salesforce's session ids and access tokens (the organisation's id, '!', the session's secret).
    ("ionic-token", r"ion_", r"[A-Za-z0-9]{42}" + _E, ("ion_",)),
    ("fleetbase-key", r"flb_(?:live|test)_", r"[A-Za-z0-9]{20}" + _E, ("flb_live_", "flb_test_")),
    ("pagarme-key", r"ak_(?:live|test)_", r"[A-Za-z0-9]{30}" + _E, ("ak_live_", "ak_test_")),
    ("flexport-token", r"shltm_", r"[A-Za-z0-9_\-]{40}" + _E, ("shltm_",)),
    ("telnyx-key", r"KEY", r"[0-9A-Za-z_\-]{55}" + _E, ("key",)),
    ("dfuse-key", r"web_", r"[0-9a-f]{32}" + _E, ("web_",)),
    ("dropbox-token", r"sl\.(?:u\.)?", r"[A-Za-z0-9_\-=]{130,1200}" + _E, ("sl.",)),
    ("salesforce-token", r"00D", r"[A-Za-z0-9]{12,15}![A-Za-z0-9._]{80,}" + _E, ("00d",)),
)


def _prefixed(name: str, prefix: str, body: str, anchors: tuple[str, ...]) -> Pattern:
    """A row of :data:`PREFIXED` as a :class:`Pattern`: the provider's prefix and the body's length and alphabet
    are the evidence, whatever the body's entropy (see :data:`PROVIDER_SHAPES`)."""
    # A short prefix must start a token: checked on each match (a leading lookbehind would keep re from looking
    # for the prefix's literal first, and try the regex at every character of a long text).
    short = min(map(len, anchors)) <= 4
    return Pattern(name, re.compile(prefix + "(" + body + ")"), anchors, stand_ins=False, starts_token=short)


#: The table's rows that are a provider's documented prefix (or a provider's whole fixed format) with a body of
#: set length and alphabet. In a request that is evidence enough, whatever the body's entropy: 'AKC' and ten
#: 'x' are an Artifactory key's shape, and a low-entropy body is no proof of a stand-in (a test key, a key of a
#: weak generator, a value padded to its shape are all credentials to the provider). Only bottle's own
#: placeholder passes. Shapes without such a prefix (a hex run after 'secret=', a seed phrase) still let
#: filler pass.
PROVIDER_SHAPES = frozenset({"anthropic-key", "openai-key", "aws-access-key", "github-token", "slack-token",
                             "google-api-key", "google-oauth", "stripe-key", "npm-token", "pypi-token",
                             "huggingface-token", "twilio-key", "sendgrid-key", "discord-token", "telegram-bot-token",
                             "azure-storage-key"})
PATTERNS = tuple(dataclasses.replace(p, stand_ins=False) if p.name in PROVIDER_SHAPES else p for p in PATTERNS)
PATTERNS += tuple(_prefixed(*row) for row in PREFIXED)
# A value under a credential's name: after the providers' prefixes, so a prefixed token is refused by its own name.
PATTERNS += (NamedCredential(),)
PATTERNS += (
    # Webhook URLs that carry their own secret: whoever holds one may post as the integration (Discord's, Microsoft
    # Teams' and Outlook's connectors, Tines', Zapier's; Slack's are a shape above).
    Pattern("webhook-url", re.compile(
        r"(?:discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{30,}"
        r"|(?i:outlook\.office(?:365)?\.com|[a-z0-9\-]+\.webhook\.office\.com)/webhook(?:b2)?/[A-Za-z0-9\-]{36}@"
        r"|[A-Za-z0-9\-]+\.tines\.com/webhook/[A-Za-z0-9]{32}/[A-Za-z0-9]{32}"
        r"|hooks\.zapier\.com/hooks/catch/(?:\d+/)?[A-Za-z0-9]{6,})"),
        ("/api/webhooks/", "/webhook", "hooks.zapier.com"), stand_ins=False, starts_token=False),
    # Kubernetes bootstrap tokens (kubeadm's 'abcdef.0123456789abcdef': an id of 6, a secret of 16, lower-case
    # letters and digits): the secret part must mix letters and digits, so a dotted name of words is not one.
    Pattern("kubernetes-bootstrap-token", re.compile(
        r"\.(?<=(?<![A-Za-z0-9_.\-])[a-z0-9]{6}\.)(?=[a-z]*[0-9])(?=[0-9]*[a-z])[a-z0-9]{16}(?![A-Za-z0-9_.\-])"),
        (), starts_token=False),
    # Keys that carry their issuer's mark at a set place rather than first: Azure DevOps' identifiable personal
    # access tokens (84 characters, 'AZDO' at 77 to 80), New Relic's license keys ('NRAL' last, a region first or
    # not) and mobile app tokens ('-NRMA' last).
    # Each regex starts at the mark and looks back for the rest, so a long text is searched for a literal, not
    # tried at every character.
    Pattern("azure-devops-token", re.compile(r"AZDO(?<=(?<![A-Za-z0-9])[A-Za-z0-9]{76}AZDO)[A-Za-z0-9]{4}"
                                             r"(?![A-Za-z0-9])"), ("azdo",), stand_ins=False, starts_token=False),
    Pattern("newrelic-key", re.compile(r"NRAL(?<=(?<![A-Za-z0-9])[a-f0-9]{36}NRAL|(?<![A-Za-z0-9])eu01xx[a-f0-9]{30}NRAL)"
                                       r"(?![A-Za-z0-9])"), ("nral",), stand_ins=False, starts_token=False),
    Pattern("newrelic-key", re.compile(r"-NRMA(?<=(?<![A-Za-z0-9])[a-f0-9]{40}-NRMA)(?![A-Za-z0-9])"
                                       r"|-NRMA(?<=(?<![A-Za-z0-9])eu01xx[a-f0-9]{36}-NRMA)(?![A-Za-z0-9])"),
            ("-nrma",), stand_ins=False, starts_token=False),
    # Mailchimp's keys end in their data centre, '-us' and one or two digits ('-us2', '-us21'); the catalogue's
    # rule reads two.
    Pattern("mailchimp-api-key", re.compile(_B + r"[0-9a-f]{32}-us\d{1,2}" + _E), ("-us",)),
    # Discord's tokens of any age: the account's id in base64, a timestamp of six, an HMAC of 27 or more. The shape
    # above reads the ids of recent accounts ('M', 'N', 'O'); older tokens start otherwise.
    Pattern("discord-token", re.compile(r"(?<![A-Za-z0-9_\-.])(?=[A-Za-z_\-]*[0-9])[A-Za-z0-9_\-]{24,26}\."
                                        r"[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}(?![A-Za-z0-9_\-.])"), (),
            gate=re.compile(r"\.[A-Za-z0-9_\-]{6}\.")),
    # Artifactory's encrypted passwords: 'AP', a hex digit, eight or more letters and digits. One random base64
    # value in about 16,000 starts so, so the shape counts where a name before it says what it is.
    Pattern("artifactory-password", re.compile(
        r"(?i:artifactory|jfrog|art[_\-]?api|passw(?:or)?d|pwd|api[_\-]?key|secret|token|credential|auth)"
        r"[^\n]{0,24}?(?<![A-Za-z0-9_\-+/])(AP[0-9A-F][A-Za-z0-9]{8,})(?![A-Za-z0-9_\-+/])"),
        ("ap",), stand_ins=False, starts_token=False,
        gate=re.compile(r"AP[0-9A-F][A-Za-z0-9]{8}")),  # the shape first (names are common), a literal to scan for
)



#: Past this length a catalogue rule reads only the windows around its keywords (characters before and after).
WINDOWED, WINDOW_BEFORE, WINDOW_AFTER = 16384, 320, 4096


class CatalogueRule:
    """One rule of the generated gitleaks table (``inspection_catalogue``), read as gitleaks reads it.

    Its keywords gate the regex; the secret is the rule's secret group or the
    first group that matched; it must clear the rule's entropy floor, must not
    be filler, and must not be allowed by the rule's or the table's
    allow-lists (templates, variables, names that are not credentials).
    """

    def __init__(self, row: tuple, global_allow: tuple[re.Pattern, ...], global_stopwords: tuple[str, ...]):
        (self.name, regex, self.keywords, self.group, self.entropy, allow_secret, allow_match, allow_line,
         self.stopwords) = row
        with warnings.catch_warnings():  # Go's '[[' in a class: Python warns of a future change it does not need
            warnings.simplefilter("ignore")
            self.regex = re.compile(regex)
            self.allow_secret = tuple(map(re.compile, allow_secret))
            self.allow_match = tuple(map(re.compile, allow_match))
            self.allow_line = tuple(map(re.compile, allow_line))
        self.global_allow, self.global_stopwords = global_allow, global_stopwords

    def search(self, text: str, lowered: str, gated: bool = False) -> str | None:
        """The first secret this rule finds in ``text`` (``gated``: its keywords are known to be there)."""
        if not gated and self.keywords and not any(keyword in lowered for keyword in self.keywords):
            return None
        for start, end in self._windows(lowered):
            for match in self.regex.finditer(text, start, end):
                if _inside_blob(text, match.start(), match.end()):
                    continue  # deep inside one long base64 run: chance, as for the table's own shapes
                secret = match.group(self.group) if self.group else next((g for g in match.groups() if g),
                                                                         match.group())
                if not self._allowed(secret, match):
                    return secret
        return None

    def _windows(self, lowered: str) -> list[tuple[int, int]]:
        """Where to run the regex: the whole of a short text; in a long one, around each keyword (every match
        holds one), so a 1 MB body that holds a common keyword by chance is not searched whole by every rule."""
        if len(lowered) <= WINDOWED or not self.keywords:
            return [(0, len(lowered))]
        windows: list[tuple[int, int]] = []
        for keyword in self.keywords:
            position = lowered.find(keyword)
            while position >= 0:
                if len(windows) >= 4096:
                    return [(0, len(lowered))]
                windows.append((max(0, position - WINDOW_BEFORE), position + WINDOW_AFTER))
                position = lowered.find(keyword, position + 1)
        return merged_spans(windows)

    def _allowed(self, secret: str, match: re.Match) -> bool:
        if not secret or filler(secret) or (self.entropy and entropy(secret) <= self.entropy):
            return True
        if named.placeholder(secret.strip("\"'`")):
            return True  # a published default password or a template ('"password"', '"changeme"'), as for a name
        lowered = secret.lower()
        if any(word in lowered for word in self.global_stopwords) or any(w in lowered for w in self.stopwords):
            return True
        if any(r.search(secret) for r in (*self.global_allow, *self.allow_secret)):
            return True
        if any(r.search(match.group()) for r in self.allow_match):
            return True
        if self.allow_line:
            text = match.string
            start, end = text.rfind("\n", 0, match.start()) + 1, text.find("\n", match.end())
            return any(r.search(text[start:end if end >= 0 else len(text)]) for r in self.allow_line)
        return False


def _catalogue() -> tuple[CatalogueRule, ...]:
    """The generated table's rules, less :data:`CATALOGUE_LEFT_OUT`."""
    allow = tuple(map(re.compile, catalogue.GLOBAL_ALLOW))
    return tuple(CatalogueRule(row, allow, catalogue.GLOBAL_STOPWORDS) for row in catalogue.RULES
                 if row[0] not in CATALOGUE_LEFT_OUT)


def _url_password(match: re.Match) -> bool:
    """A URL's ``user:password@`` with a password of eight characters or more, unless the pair is a stand-in by
    the catalogue's own list (``user:password``, ``<user>:<pass>``, ``$USER:$PASS``) or a template."""
    pair = f"{match.group('user')}:{match.group('password')}"
    password = unquote(match.group("password"))
    if len(password) < 8 or filler(match.group("password")):
        return False  # shorter than any service accepts ('abc:xyz@' in documentation)
    if named.names_a_credential(password) or named.placeholder(password):
        return False  # 'YOUR_PASSWORD', 'REPLACE_WITH_PASSWORD', 'mypassword': what goes there, named or a stand-in
    # The whole pair must be a stand-in: 'app:passw0rd…' only starts like 'user:pass'.
    return not any(r.fullmatch(pair) for r in _STAND_IN_PAIRS) and "{" not in pair


#: gitleaks' allow-list of its curl-auth-user rule: user:password pairs that are stand-ins, not credentials.
_STAND_IN_PAIRS = tuple(re.compile(r) for row in catalogue.RULES if row[0] == "curl-auth-user" for r in row[5])
PATTERNS += (
    # crypt(3)'s and Kerberos' published hash formats: a password's hash is credential material.
    Pattern("password-hash", hashes.PASSWORD_HASH, ("$",), hashes.carries_data, starts_token=False),
    # RFC 3986 userinfo with a password: 'scheme://user:password@host'; the host follows the authority's last '@'
    # (a password written with an unescaped '@' in it is still the password).
    Pattern("url-credentials", re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s/?#@:'\"<>\\]{1,256}):"
                                          r"(?P<password>[^\s/?#@'\"<>\\](?:[^\s/?#'\"<>\\]{1,254}[^\s/?#@'\"<>\\])?)"
                                          r"@[A-Za-z0-9\[]"),
            ("://",), _url_password, starts_token=False),
)


class Catalogue:
    """The catalogue's rules with one keyword gate for them all: which rules a text can match at all, found once."""

    def __init__(self, rules: Iterable[CatalogueRule]):
        self.rules = tuple(rules)
        self.order = {rule: index for index, rule in enumerate(self.rules)}
        self.by_keyword: dict[str, list[CatalogueRule]] = {}
        for rule in self.rules:
            for keyword in rule.keywords:
                self.by_keyword.setdefault(keyword, []).append(rule)
        self.keyless = tuple(rule for rule in self.rules if not rule.keywords)
        self.by_head: dict[str, list[str]] = {}  # a keyword's first two characters: a short text's pairs find it
        for keyword in self.by_keyword:
            self.by_head.setdefault(keyword[:2], []).append(keyword)

    def candidates(self, lowered: str) -> list[CatalogueRule]:
        """The rules whose keywords are in ``lowered`` (and those with none), in table order."""
        if len(lowered) <= 1024:
            pairs = {lowered[i:i + 2] for i in range(len(lowered) - 1)}
            keys = [k for head in pairs.intersection(self.by_head) for k in self.by_head[head] if k in lowered]
        else:
            keys = [k for k in self.by_keyword if k in lowered]
        found = {rule for key in keys for rule in self.by_keyword[key]}
        found.update(self.keyless)
        return sorted(found, key=self.order.__getitem__)


#: Catalogue rules not used: a rule with no provider's shape in it, which the table's own
#: ``credential-assignment`` judges with bottle's host binding (a host given a declared secret may take one);
#: ``jwt``, which the table's own rule judges with the header decoded; ``private-key``, which the table's own rule
#: judges by the body after the armour (64 characters of anything would take a redaction or words in base64).
CATALOGUE_LEFT_OUT = frozenset({"generic-api-key", "jwt", "private-key"})
HAND_PATTERNS = PATTERNS
CATALOGUE = Catalogue(_catalogue())
ALL_RULES = frozenset(CATALOGUE.rules)
PATTERNS += CATALOGUE.rules

AUTH_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "private-token",
                "x-goog-api-key", "x-access-token")


# --- the inspector ------------------------------------------------------------------------------------


def _leaves(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from _leaves(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _leaves(item)
    elif obj is not None and not isinstance(obj, bool):
        yield str(obj)


def body_pieces(body: bytes, content_type: str) -> list[str]:
    """The separate values in a body (JSON strings, form values, multipart parts), in order."""
    head = body[:64].lstrip()
    if head[:1] in (b"{", b"[") or "json" in content_type:
        try:
            return list(_leaves(json.loads(body)))
        except (ValueError, RecursionError):
            return []
    if "x-www-form-urlencoded" in content_type or (b"=" in body[:256] and b" " not in body[:256]):
        try:
            return [part for pair in parse_qsl(body.decode("latin-1"), keep_blank_values=True) for part in pair]
        except ValueError:
            return []
    if "multipart/" in content_type:
        match = re.search(r"boundary=\"?([^\";]+)", content_type)
        if match:
            parts = body.split(b"--" + match.group(1).encode())
            return [part.split(b"\r\n\r\n", 1)[-1].rstrip(b"\r\n").decode("utf-8", "replace") for part in parts]
    return []


class Inspector:
    """Judges one request at a time against the secrets a bottle knows and the credential patterns.

    :param secrets: dicts with ``name``, ``value``, ``placeholder`` and ``hosts`` (the bundle's secrets file).
    :param allow: the egress allow-list (wildcards there are where subdomain labels are the agent's to choose).
    :param model_host: the model API host, where Anthropic credentials may always go.
    """

    def __init__(self, secrets: list[dict], allow: Iterable[str] = (), model_host: str | None = None):
        self.known: list[Known] = []
        self.pattern_hosts: dict[str, list[str]] = {}
        for secret in secrets:
            hosts = list(secret.get("hosts") or [])
            for field in ("value", "placeholder"):
                text = secret.get(field) or ""
                if len(text) >= MIN_SECRET:
                    self.known.append(Known(secret["name"], text, hosts))
            value = secret.get("value") or ""
            for pattern in PATTERNS:
                if value and pattern.search(value, value.lower()) is not None:
                    self.pattern_hosts.setdefault(pattern.name, []).extend(hosts)
            # A host that takes a declared credential may take credentials: the generic rule stays off there.
            self.pattern_hosts.setdefault("credential-assignment", []).extend(hosts)
        if model_host:
            self.pattern_hosts.setdefault("anthropic-key", []).append(model_host)
            self.pattern_hosts.setdefault("credential-assignment", []).append(model_host)
        self._needle_cache: dict[tuple[int, ...], tuple[re.Pattern | None, dict[bytes, str]]] = {}
        self.wildcards = sorted({entry.split(":")[0][1:] for entry in allow if entry.startswith("*.")},
                                key=len, reverse=True)
        # What is not bound to the request's host, kept per host (hundreds of patterns, a handful of hosts).
        self._unbound_known = Unbound((k, k.hosts) for k in self.known)
        self._unbound_patterns = Unbound((p, self.pattern_hosts.get(p.name, ())) for p in PATTERNS)

    def inspect(self, host: str, port: int | None, path: str, headers: Iterable[tuple[str, str]], body: bytes,
                content_type: str = "", method: str = "") -> Finding | None:
        """The first reason to refuse this request, or None when it may go.

        A request that needs more decoding than the bounds allow is refused
        (rule ``inspection-limit``): what could not be read does not leave.
        """
        try:
            return self._inspect(host, port, path, headers, body, content_type, method)
        except InspectionLimit as limit:
            return Finding("inspection-limit", str(limit), "request")

    def _inspect(self, host: str, port: int | None, path: str, headers: Iterable[tuple[str, str]], body: bytes,
                 content_type: str, method: str = "") -> Finding | None:
        original_host, host = host.rstrip("."), host.lower().rstrip(".")
        headers = list(headers)
        names = " ".join(k for k, _ in headers if k.lower() not in ("host", "content-length"))  # as sent
        headers = [(k.lower(), v) for k, v in headers if k.lower() not in ("host", "content-length")]
        known, patterns = self._unbound_known(host, port), self._unbound_patterns(host, port)

        finding = self._subdomain(original_host, known, patterns)
        if finding:
            return finding
        split = urlsplit(path)
        query = parse_qsl(split.query, keep_blank_values=True)
        places = [("url", path.encode("utf-8", "surrogateescape"))]
        places += [(f"header {name}", value.encode("utf-8", "surrogateescape")) for name, value in headers]
        # The rest of the head travels too: a method or a header's name can carry data as well as a value.
        places.append(("header names", names.encode("utf-8", "surrogateescape")))
        if method:
            places.append(("method", method.encode("utf-8", "surrogateescape")))
        if body:
            places.append(("body", body))
        for where, data in places:
            finding = self._scan(where, data, known, patterns)
            if finding:
                return finding
            if where.startswith("header ") and where[7:] in AUTH_HEADERS:
                finding = self._auth_header(where, data.decode("latin-1"), patterns)
                if finding:
                    return finding
        pieces = [unquote(p) for p in split.path.split("/")] + [part for pair in query for part in pair]
        pieces += [value for _, value in headers] + names.split(" ") + [method]
        pieces += body_pieces(body, content_type.lower()) if body else []
        for secret in known:
            if secret.covered_by(pieces):
                return Finding("secret-value", secret.name, "request, split across fields")
        return None

    def _needles(self, known: list[Known]) -> tuple[re.Pattern | None, dict[bytes, str]]:
        """One regex for every needle of ``known`` (one pass per view, not one per needle), and whose each is."""
        key = tuple(id(secret) for secret in known)
        if key not in self._needle_cache:
            owner = {needle: secret.name for secret in reversed(known) for needle in secret.needles}
            ordered = sorted(owner, key=len, reverse=True)
            regex = re.compile(b"|".join(re.escape(needle) for needle in ordered)) if ordered else None
            self._needle_cache[key] = (regex, owner)
        return self._needle_cache[key]

    def _scan(self, where: str, data: bytes, known: list[Known], patterns: list[Pattern]) -> Finding | None:
        needles, owner = self._needles(known)
        if len(patterns) == len(PATTERNS):  # no rule bound to this host (the usual case): no sets to build
            hand, allowed = HAND_PATTERNS, ALL_RULES
        else:
            hand = [p for p in patterns if type(p) is not CatalogueRule]
            allowed = frozenset(p for p in patterns if type(p) is CatalogueRule)
        for view in decoded_views(data):
            if len(view) > 65536:  # a long view: the fast substring search, needle by needle
                for secret in known:
                    if secret.found_in(view):
                        return Finding("secret-value", secret.name, where)
            elif needles is not None and (hit := needles.search(view)):  # many short views: one pass each
                return Finding("secret-value", owner[hit.group()], where)
            if patterns and texty(view):
                text = view.decode("utf-8", "replace")
                lowered = text.lower()
                for pattern in hand:
                    if pattern.search(text, lowered) is not None:
                        return Finding("credential", pattern.name, where)
                for rule in CATALOGUE.candidates(lowered):
                    if rule in allowed and rule.search(text, lowered, gated=True) is not None:
                        return Finding("credential", rule.name, where)
                identifier = find_identifier(text, lowered)
                if identifier:
                    return Finding("personal-data" if identifier == "us-ssn" else "financial-data", identifier, where)
        return None

    def _auth_header(self, where: str, value: str, patterns: list[Pattern]) -> Finding | None:
        """A credential the agent holds itself (not a placeholder), in a header made for credentials."""
        if not any(p.name == "credential-assignment" for p in patterns):
            return None
        scheme, _, token = value.strip().partition(" ")
        token = token.strip() if token else scheme
        if scheme.lower() == "basic" and token:
            decoded = _b64(token.encode())
            token = decoded.decode("latin-1").partition(":")[2] if decoded else token
        if not filler(token) and _generic_secret(token.replace(" ", "")):
            return Finding("credential", "credential-header", where)
        return None

    def _subdomain(self, host: str, known: list[Known], patterns: list[Pattern]) -> Finding | None:
        suffix = next((w for w in self.wildcards if host.lower().endswith(w)), None)
        if suffix is None:
            return None
        labels = [label for label in host[: -len(suffix)].split(".") if label]
        if not labels:
            return None
        joined = "".join(labels)
        for secret in known:
            if secret.found_in(joined.encode()) or secret.found_in(host.encode()):
                return Finding("secret-value", secret.name, "host name")
            lowered_needles = {n.lower() for n in secret.needles if n.isascii()}
            if any(n in joined.encode() for n in lowered_needles):
                return Finding("secret-value", secret.name, "host name")
        # The labels are judged together: joined as written, and with the separators an encoder adds taken out.
        bare = re.sub(r"[-.]", "", ".".join(labels))
        underscored = ".".join(labels).replace("-", "_")  # '_' is not allowed in a name: 'ghp-…' stands for 'ghp_…'
        for data in (joined.encode(), bare.encode(), underscored.encode(), *(label.encode() for label in labels)):
            finding = self._scan("host name", data, known, patterns)
            if finding:
                return finding
        if data_labels(labels):
            return Finding("subdomain-data", "subdomain-data", "host name")
        return None


_DATA_ALPHABETS = (re.compile(r"^[0-9a-f]+$"), re.compile(r"^[a-z2-7]+$"), re.compile(r"^[a-z0-9]+$"),
                   re.compile(r"^[A-Za-z0-9_\-]+$"))


def data_label(label: str) -> bool:
    """A label that is encoded data: long and random, or decodable into readable text."""
    if len(label) >= 40 and entropy(label) >= (4.5 if "-" in label.strip("-") else 3.3):
        return True
    if len(label) >= 16:
        raw = label.encode()
        for decode in (_hex, _b32, _b64):
            try:
                decoded = decode(raw)
            except ValueError:
                decoded = None
            if decoded and len(decoded) >= 8 and all(32 <= b < 127 or b in (9, 10, 13) for b in decoded):
                return True
    return False


_VOWELS = frozenset("aeiouy")
_CONSONANT_RUN = re.compile(r"[b-df-hj-np-tv-xz]{5,}")
#: Letter pairs found in English words (from the BIP-39 list): random letters mostly make pairs outside it.
_BIGRAMS = frozenset(word[i:i + 2] for word in BIP39 for i in range(len(word) - 1))


def _wordlike(part: str) -> bool:
    """A piece of a name as people write them: a pronounceable word (perhaps numbered), an abbreviation, a number."""
    if len(part) <= 3 or (part.isdigit() and len(part) <= 4):
        return True
    if len(part) >= 8 and _HEX_ONLY.match(part.encode()):
        return False  # 'deadbeef' is hex, not a word
    word = part.rstrip("0123456789") if len(part) - len(part.rstrip("0123456789")) <= 3 else part
    if not word.isalpha():
        return False
    vowels = sum(c in _VOWELS for c in word)
    if not 0.2 <= vowels / len(word) <= 0.7 or _CONSONANT_RUN.search(word):
        return False
    pairs = [word[i:i + 2] for i in range(len(word) - 1)]
    return not _BIGRAMS or len(word) < 6 or sum(pair in _BIGRAMS for pair in pairs) >= 0.8 * len(pairs)


def data_labels(labels: list[str]) -> bool:
    """Labels chosen by the agent that together carry data.

    One clearly encoded label, or, over all labels together, 16 or more
    characters in pieces that are neither words, short abbreviations nor
    small numbers (a base32 label, hex, data cut into short labels).
    Splitting data over many short labels does not hide it: the pieces are
    counted together.
    """
    if any(data_label(label) for label in labels):
        return True
    pieces = [piece for label in labels for piece in re.split(r"[-_]+", label.lower()) if piece]
    return sum(len(piece) for piece in pieces if not _wordlike(piece)) >= 16
