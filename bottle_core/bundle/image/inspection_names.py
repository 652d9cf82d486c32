"""Credentials by name and alphabet: a value that a credential's name is given, judged by the value's length and
alphabet (entropy only breaks ties), whatever provider it is for.

A provider's prefix (``ghp_``, ``AKIA``) says what a token is; most services
issue none, and their keys are found by the name they are kept under:
``api_key = …``, ``"secret": "…"``, ``_authToken=…`` in an ``.npmrc``,
``password …`` in a ``.netrc``, ``<password>…</password>`` in a Maven or
NuGet file, ``Authorization: Bearer …``, ``sshpass -p …``. Such a value is a
credential when it is long enough for one (:data:`MIN_TOKEN`, or
:data:`MIN_PASSWORD` for a password), written in a credential's alphabet,
and carries data: pieces that are not words or numbers. What passes:
templates and references (``${NPM_TOKEN}``, ``<your key>``, ``$PASS``,
``os.environ[…]``), redactions (``****``), code (``generateApiKey()``,
``config.secret_key``), published default passwords (``changeme``), words,
numbers, and names that hold no credential (``csrf_token``, ``page_token``,
``public_key``, ``max_tokens``). Standard library only.
"""

from __future__ import annotations

import re

from .hosts import entropy

#: Shortest value read as a token or key, and as a password or passphrase.
MIN_TOKEN = 12
MIN_PASSWORD = 8

#: The last word of a credential's name (names split at case changes, '_', '-', '.'), and of a password's.
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "passcode", "pwd", "pass"})
_LAST_WORDS = _PASSWORD_WORDS | {"key", "token", "secret", "credential", "credentials", "auth", "bearer"}
#: A credential's word glued to another ('apikey', 'authtoken', Duo's 'skey'; also 'monkey', whose value must
#: still look like a credential's).
_GLUED = re.compile(r"(?:key|token|secret|password|passwd|pass)$")
_GLUED_PASS = frozenset({"dbpass", "userpass", "adminpass", "apipass", "rootpass", "smtppass", "mailpass"})
#: A word before the last that says the value is no credential: a page's or a form's token, a public key, a count.
_NOT_CREDENTIAL = frozenset("""csrf xsrf page next prev continuation cursor sync public publishable cache sort
partition primary foreign idempotency dedup max num count total min limit""".split())

#: Published default and stand-in passwords (vendors' manuals, the values documentation uses): no secret.
DEFAULTS = frozenset("""
changeme changeit password passw0rd p@ssw0rd p@ssword secret secrets admin administrator root toor default
guest letmein welcome qwerty abc123 123456 1234567 12345678 123456789 1234567890 test testing test123 example
sample dummy fake foobar placeholder redacted hidden masked none null nil undefined true false empty
mypassword yourpassword mysecret yoursecret password123 password1 admin123 secret123 raspberry
""".split())

#: A name that says credential, the separator after it, and the value: ``name = value``, ``"name": "value"``,
#: ``name: value``, ``name value``, ``name - 'value'``, ``name := value``. The name's own start is found by
#: looking back from its last word (a leading character run in the regex would make it quadratic).
ASSIGNMENT = re.compile(
    r"(?i:key|token|secret|credentials?|auth|bearer|passw(?:or)?d|passphrase|passcode|pwd|pass)(?P<number>\d{0,2})"
    r"(?P<close>\\{0,7}[\"']|\]|)(?P<sep>[ \t]*(?:::=|:=|=>|->|[:=]|[ \t]-[ \t])[ \t]*|[ \t]+)"
    r"\\{0,7}(?P<open>[\"'`]?)[ \t]*(?P<value>[^\s\"'`<>,;&\\)}\]|]{6,512})")
#: The same, read in lower-cased text (three to five times faster than a case-blind regex).
_ASSIGNMENT_LOWER = re.compile(ASSIGNMENT.pattern.replace("(?i:", "(?:", 1))
#: Names that take their value after blanks alone (a .netrc's 'password', 'Bearer', 'APIKEY'), not 'pass' or 'key'
#: in prose.
_SPACED = re.compile(r"(?:password|passwd|token|secret|bearer|(?-i:KEY|TOKEN|SECRET|PASSWORD|PWD))\b", re.I)
_SCHEME = re.compile(r"^(?:bearer|basic|token)[ \t]+", re.I)
#: An XML element named as a credential (``<password>…</password>``, ``<secret>{…}</secret>``).
ELEMENT = re.compile(r"<(?P<tag>[A-Za-z][\w.\-:]{0,60})>(?P<value>[^<>\n]{6,512})</(?P=tag)>")
#: Command lines that take a password: sshpass's ``-p PASS``, MySQL's and MariaDB's ``-pPASS`` (glued: after a blank
#: comes the database's name, the password being asked for), any tool's ``--password=PASS`` or ``--password PASS``.
COMMAND = re.compile(r"(?:(?i:sshpass)\b[^\n]{0,120}?[ \t]-p[ \t]*|(?i:mysql\w*|mariadb\w*)\b[^\n]{0,120}?[ \t]-p(?=\S)"
                     r"|[ \t]--password[= ][ \t]*)(?P<open>[\"']?)(?P<value>[^\s\"'`\-][^\s\"'`]{3,255})")
#: Where the name (identifier characters) ends, walking back from its last word.
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-]{0,64}$")
#: Words of a name or a value: 'npmAuthToken' is npm, Auth, Token; 'APIKey' is API, Key.
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_VOWELS = frozenset("aeiouy")
#: A time-based UUID (version 1): a clock and a node id, no secret in it.
TIME_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
_TOKEN_ALPHABET = re.compile(r"^[A-Za-z0-9+/_\-.~]+=*$")


def credential_name(name: str) -> tuple[bool, bool]:
    """(is a credential's name, is a password's name) for an identifier such as ``npm_authToken`` or ``API-KEY``:
    its last word says credential, and what comes before is words (``larksuite``), not a random run that happens
    to end in 'key'."""
    words = [w.lower() for w in _CAMEL.findall(name)]
    if not words:
        return False, False
    last = words[-1]
    glued = _GLUED.search(last) if last not in _LAST_WORDS else None
    if glued and glued.group() == "pass" and last not in _GLUED_PASS:
        glued = None  # 'bypass', 'compass'
    if last not in _LAST_WORDS and not (glued and _word(last[:glued.start()])):
        return False, False
    stem = name[:len(name) - len(last)] + (last[:glued.start()] if glued else "")
    if _NOT_CREDENTIAL.intersection(words[:-1]) or not all(run.isalpha() or _plain(run)
                                                             for run in re.findall(r"[A-Za-z0-9]+", stem)):
        return False, False
    return True, (glued.group() if glued else last) in _PASSWORD_WORDS


def _plain(run: str) -> bool:
    """A run of letters and digits as people write it: a number, words (``generateApiKey``), a word numbered
    (``test123``); letters and digits mixed through it, or letters that make no words, are data."""
    if run.isdigit():
        return len(run) < 12
    if len(run) <= 3:
        return True
    word = run.rstrip("0123456789") if len(run) - len(run.rstrip("0123456789")) <= 3 else run
    if not word.isalpha():
        return False
    pieces = _CAMEL.findall(word)
    return sum(map(len, pieces)) >= 3 * len(pieces) and all(_word(p) for p in pieces)


def _word(piece: str) -> bool:
    """Pronounceable: a vowel, not mostly vowels, no six consonants in a row ('Passphrase', not 'mbwhsxt')."""
    lowered = piece.lower()
    if len(lowered) <= 4 or piece.isupper() and len(piece) <= 5:
        return True
    vowels = sum(c in _VOWELS for c in lowered)
    return 0 < vowels <= 0.7 * len(lowered) and not re.search(r"[b-df-hj-np-tv-xz]{6,}", lowered)


def placeholder(value: str) -> bool:
    """A template, reference or redaction: it stands for a credential and carries none."""
    lowered = value.lower()
    if value[:1] in "$%@&" or "${" in value or "{{" in value or "%s" in value or "%(" in value:
        return True
    if "***" in value or "…" in value or "..." in value or "•" in value or "xxxx" in lowered:
        return True
    return lowered in DEFAULTS or lowered.startswith(("env.", "process.env", "os.environ", "getenv", "secrets."))


#: Code where a value would be: an attribute path ('self._lib.NID_…', 'base64.b16encode(…'), a call or a subscript
#: ('Optional[…]', 'getpass()'). A path starts with a short name that has a vowel ('win32api'): 'tkn.v1_…' and 'pk.…'
#: are token prefixes, and a JSON Web Token's first part is longer.
_CODE_PATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,11})(?:\.[A-Za-z_]\w*)+(?:[\[(]|$)")
_CALL = re.compile(r"^[A-Za-z_][\w.]*[\[(]")


def code(value: str) -> bool:
    """``value`` is code that computes or names a credential, not one."""
    path = _CODE_PATH.match(value)
    return bool(path and re.search(r"[aeiouy_]", path.group(1), re.I) or _CALL.match(value))


def credential_value(value: str, password: bool = False, hex_alone: bool = True) -> bool:
    """``value`` is long enough for a credential, in a credential's alphabet, and carries data (not words, numbers,
    code or a stand-in). A password may be shorter and use any printable character; a token's alphabet is
    base64's, hex's and base58's with a few separators. ``hex_alone``: a run of hex digits counts (after a bare
    'key' it is as likely a hash)."""
    value = value.strip()
    if len(value) < (MIN_PASSWORD if password else MIN_TOKEN) or placeholder(value) or code(value) or "://" in value \
            or TIME_UUID.match(value):
        return False
    if not password and not _TOKEN_ALPHABET.match(value):
        return False
    if len(set(value.lower())) <= 2:
        return False  # filler: 'xxxxxxxx', '00000000'
    if not hex_alone and re.fullmatch(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*", value):
        return False
    data = sum(len(run) for run in re.findall(r"[A-Za-z0-9]+", value) if not _plain(run))
    if password:
        return data >= 4 and not value.startswith(("/", "./", "~/"))  # a path: 'PWD: /home/user
    # Letters and digits mixed through the value, or letters that are no words: data. Entropy breaks a tie.
    return data >= 12 or (data >= 8 and entropy(value) >= 3.0)


def find(text: str, lowered: str | None = None) -> str | None:
    """The first value in ``text`` kept under a credential's name (its kind: 'named', 'element' or 'command').
    ``lowered``: ``text.lower()``, when the caller has it (names are found in it, a case-blind regex being slower)."""
    if lowered is None or len(lowered) != len(text):
        lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer ('İ'): positions would not agree
        lowered = text
    for match in _ASSIGNMENT_LOWER.finditer(lowered) if lowered is not text else ASSIGNMENT.finditer(text):
        start, at = match.start(), match.start("value")
        close, opening = text[match.end("number"):match.end("close")], match.group("open")
        option = text[max(0, start - 64):start].rsplit(" ", 1)[-1].startswith("-")
        if match.group("sep").strip() == "" and not match.group("close") and not option \
                and not _SPACED.match(text, start):
            continue  # 'pass the value', 'the secret ingredient': prose, not an assignment (nor '--api-key VALUE')
        value = text[at:match.end("value")]
        if opening:  # a quoted value is the whole string: 'abc()def' is not 'abc'
            end = text.find(opening, at, at + 513)
            value = text[at:end].rstrip("\\") if end >= 0 else value  # '\"' closes it too
            value = _SCHEME.sub("", value)  # '"Bearer eyJ…"': the scheme, then the credential
        head = _NAME_CHARS.search(text, max(0, start - 64), start)
        if head.group()[:1] in ("n", "r", "t") and text[head.start() - 1:head.start()] == "\\":
            head = _NAME_CHARS.search(text, head.start() + 1, start)  # '\npage_token': an escape, then the name
        name = head.group() + text[start:match.end("number")] + close
        name = re.sub(r"\d+$", "", name.strip("\"'[]\\"))  # 'token1', 'secret_key2': numbered names
        is_name, password = credential_name(name)
        if not is_name:
            continue
        # A bare 'key' may name a hash; in a URL's query ('?key=…') it names an API key.
        bare_key = re.sub(r"[^a-z]", "", name.lower()) == "key" and not (start and text[start - 1] in "?&")
        if credential_value(value, password, hex_alone=not bare_key):
            return "named"
    if "</" in text:
        for match in ELEMENT.finditer(text):
            is_name, password = credential_name(match.group("tag").rsplit(":", 1)[-1])
            if is_name and any(credential_value(piece.strip("{}"), password)
                               for piece in match.group("value").split()):
                return "element"
    if "-p" in text or "--password" in text:
        for match in COMMAND.finditer(text):
            value = match.group("value")
            if credential_value(value, password=True):  # not '--password options' in prose
                return "command"
    return None
