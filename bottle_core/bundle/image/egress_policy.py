"""The egress policy: what an allow-list entry allows, and the judgement of one destination.

Standard library only: it runs in the bundle beside ``proxy_addon.py`` and on
the host, where the manifest's ``egress.allow`` entries are checked with
:func:`parse_entry` before anything starts.

An entry names a host (``example.com``) or every subdomain of one
(``*.example.com``, not ``example.com`` itself), and which port and protocol:

===========================  =====  ==========================================
entry                        port   what may pass
===========================  =====  ==========================================
``example.com``              443    HTTPS
``https://example.com:8443`` 8443   HTTPS
``http://example.com``       80     plain HTTP
``example.com:80``           80     anything: HTTP, HTTPS, or a non-HTTP tunnel
``example.com:22``           22     anything (an explicitly listed port)
===========================  =====  ==========================================

Under a wildcard, a name whose labels look like encoded data (long, or
hex/base32/base64-like) is refused with the rule ``encoded-label``: such a
name would carry data out through the name lookup alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .hosts import entropy, host_matches, normal_host

#: Protocols a destination is judged for: HTTP over TLS, plain HTTP, a CONNECT
#: tunnel (its content is judged again once seen), and a tunnel that is not HTTP.
HTTPS, HTTP, TUNNEL, RAW = "https", "http", "tunnel", "raw"
DEFAULT_PORTS = {"https": 443, "http": 80}

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_ENTRY = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>[^:/?#]*)(?::(?P<port>[^/?#]*))?(?P<rest>.*)$")

#: Thresholds of the encoded-label rule (see :func:`looks_encoded`).
LONG_LABEL = 40
LONG_NAME = 60
HEX_LABEL = 16
CODED_LABEL = 16


@dataclass(frozen=True)
class Entry:
    """One allow-list entry: a host pattern, one port, and the protocol it admits (None: any)."""

    text: str
    host: str
    port: int
    scheme: str | None

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def matches_host(self, host: str) -> bool:
        return host_matches(self.host, host)

    def admits(self, protocol: str) -> bool:
        """Whether this entry's protocol lets ``protocol`` through (a CONNECT tunnel: any of them)."""
        return self.scheme is None or protocol == TUNNEL or protocol == self.scheme


@dataclass(frozen=True)
class Decision:
    """The judgement of one destination: allowed or not, and the rule that decided."""

    allowed: bool
    rule: str
    reason: str


def parse_entry(text: str) -> Entry:
    """One manifest entry as an :class:`Entry`; a ValueError says what is wrong and how to write it."""
    raw = text.strip().lower()
    match = _ENTRY.match(raw)
    scheme, host, port_text, rest = (match.group("scheme"), match.group("host"), match.group("port"),
                                      match.group("rest")) if match else (None, "", None, raw)
    if scheme not in (None, "http", "https"):
        raise ValueError(f"{text!r}: only http:// or https:// may prefix a host (for other protocols list "
                         "the port: 'host:22')")
    if rest:
        raise ValueError(f"{text!r}: give a host, not a URL with a path (write 'example.com')")
    if not _HOST.match(host):
        raise ValueError(f"{text!r} is not a host name (write 'example.com', '*.example.com', "
                         "'http://example.com' or 'example.com:8443')")
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme or "https"]
    canonical = (f"{scheme}://" if scheme else "") + host + (f":{port_text}" if port_text is not None else "")
    # A bare host means HTTPS; a listed port without a scheme admits any protocol on that port.
    admitted = scheme or ("https" if port_text is None else None)
    return Entry(text=canonical, host=host, port=port, scheme=admitted)


def _longest_consonant_run(text: str) -> int:
    runs = re.findall(r"[bcdfghjklmnpqrstvwxz]+", text)
    return max((len(run) for run in runs), default=0)


def looks_encoded(label: str) -> bool:
    """Whether one name label looks like encoded data rather than a word-like name.

    Long labels (over 40 characters), hex strings of 16 or more characters with
    a digit, and alphanumeric runs of 16 or more that mix in digits or carry
    consonant runs no word has, with high character entropy (base32/base64).
    """
    if len(label) > LONG_LABEL:
        return True
    if len(label) >= HEX_LABEL and re.fullmatch(r"[0-9a-f]+", label) and re.search(r"\d", label):
        return True
    if len(label) >= CODED_LABEL and re.fullmatch(r"[a-z0-9]+", label):
        digits = sum(c.isdigit() for c in label) / len(label)
        wordless = digits >= 0.15 or _longest_consonant_run(label) >= 5
        return wordless and entropy(label) >= 3.0
    return False


def encoded_part(host: str, entry: Entry) -> str | None:
    """The part of ``host`` under wildcard ``entry`` that looks like encoded data, or None."""
    under = host[: -len(entry.host) + 1]
    labels = under.split(".")
    for label in labels:
        if looks_encoded(label):
            return label
    if len("".join(labels)) > LONG_NAME:  # data split over many short labels
        return under
    return None


class Policy:
    """The allow-list of one bottle; :meth:`judge` decides one destination."""

    def __init__(self, entries: list[str]):
        self.entries = [parse_entry(text) for text in entries]

    def judge(self, host: str, port: int, protocol: str) -> Decision:
        """Whether ``protocol`` (HTTPS, HTTP, TUNNEL or RAW) to ``host:port`` may pass, and by which rule.

        Allowed decisions name the entry that allowed them; refusals name a
        rule: ``not-allowed``, ``port-not-allowed``, ``protocol-not-allowed``,
        ``raw-tunnel`` or ``encoded-label``.
        """
        host = normal_host(host)
        named = [e for e in self.entries if e.matches_host(host)]
        if not named:
            return Decision(False, "not-allowed", f"{host} is not on this bottle's allow-list")
        on_port = [e for e in named if e.port == port]
        if not on_port:
            ports = ", ".join(sorted({str(e.port) for e in named}))
            return Decision(False, "port-not-allowed", f"port {port} of {host} is not allowed (allowed: {ports})")
        fitting = [e for e in on_port if e.admits(protocol)]
        if not fitting:
            if protocol == RAW:
                return Decision(False, "raw-tunnel", f"a tunnel that is not HTTP(S) to {host}:{port} needs "
                                "the port listed explicitly ('host:port')")
            return Decision(False, "protocol-not-allowed", f"{protocol} to {host}:{port} is not allowed")
        exact = [e for e in fitting if not e.wildcard]
        if exact:
            return Decision(True, exact[0].text, "on the allow-list")
        for entry in fitting:
            if encoded_part(host, entry) is None:
                return Decision(True, entry.text, "on the allow-list")
        return Decision(False, "encoded-label", f"{host} looks like it carries encoded data under "
                        f"{fitting[0].text}; list the host itself if it is real")
