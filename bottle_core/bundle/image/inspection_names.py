"""Credentials by name and alphabet: a value that a credential's name is given, judged by the value's length and
alphabet (entropy only breaks ties), whatever provider it is for.

A provider's prefix (``ghp_``, ``AKIA``) says what a token is; most services
issue none, and their keys are found by the name they are kept under:
``api_key = …``, ``"secret": "…"``, ``_authToken=…`` in an ``.npmrc``,
``password …`` in a ``.netrc``, ``<password>…</password>`` in a Maven or
NuGet file, ``Authorization: Bearer …`` or ``Basic …`` written in text
(:func:`written_authorization`), a password option on a command line (:data:`COMMAND`). Such a value is a
credential when it is long enough for one (:data:`MIN_TOKEN`, or
:data:`MIN_PASSWORD` for a password), written in a credential's alphabet,
and carries data: pieces that are not words or numbers. What passes:
templates and references (``${NPM_TOKEN}``, ``<your key>``, ``$PASS``,
``os.environ[…]``), redactions (``****``), code (``generateApiKey()``,
``config.secret_key``), published default passwords (``changeme``), words,
numbers, and names that hold no credential (``csrf_token``, ``page_token``,
``public_key``, ``max_tokens``).

Some values are credentials only because of the name they are under, and
each is judged as a class: under a name that says token, secret, auth or
password outright (not ``key``), a time-based UUID and a short token of
letters and digits mixed (:data:`MIN_SHORT`); under a password's name,
words a person chose (:func:`passphrase`); in quotes, a generated secret
with punctuation in its alphabet; and under a provider's name alone
(``SENDGRID = "…"``: :func:`find_provider`), a token. Standard library only.
"""

from __future__ import annotations

import base64
import functools
import itertools
import re
import urllib.parse

from .hosts import entropy

#: Shortest value read as a token or key, and as a password or passphrase.
MIN_TOKEN = 12
MIN_PASSWORD = 8
#: A number alone under a key's name, shorter than this, is an id (a 64-bit integer has 20 digits at most).
MAX_ID = 20
#: Shortest token under a name that says token, secret or auth outright (not 'key', which also names a hash or a
#: lookup): letters and digits mixed through the whole value ('mlm9iqkm').
MIN_SHORT = 8

#: The last word of a credential's name (names split at case changes, '_', '-', '.'), and of a password's.
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "passcode", "pwd", "pass"})
_LAST_WORDS = _PASSWORD_WORDS | {"key", "token", "secret", "credential", "credentials", "auth", "bearer", "pat"}
#: A credential's word glued to another ('apikey', 'authtoken', Duo's 'skey'; also 'monkey', whose value must
#: still look like a credential's).
_GLUED = re.compile(r"(?:key|token|secret|password|passwd|pass|access|private)$")
#: Words that say credential only as a qualifier after another word, the provider's or the key's (``hellosignACCESS``,
#: ``logzPrivateAccess``, ``shortcutaccess``), or in capitals after one (``tyntec ACCESS …``): alone, 'access' and
#: 'private' name a permission or a visibility as often.
_QUALIFIERS = frozenset({"access", "private"})
_GLUED_PASS = frozenset({"dbpass", "userpass", "adminpass", "apipass", "rootpass", "smtppass", "mailpass"})
#: A word before the last that says the value is no credential: a page's or a form's token, a public key, a count.
_NOT_CREDENTIAL = frozenset("""csrf xsrf page next prev continuation cursor sync public publishable cache sort
partition primary foreign idempotency dedup max num count total min limit placeholder""".split())

#: Published default and stand-in passwords (vendors' manuals, the values documentation uses): no secret.
DEFAULTS = frozenset("""
changeme changeit password passw0rd p@ssw0rd p@ssword secret secrets admin administrator root toor default
guest letmein welcome qwerty abc123 123456 1234567 12345678 123456789 1234567890 test testing test123 example
sample dummy fake foobar placeholder redacted hidden masked none null nil undefined true false empty
mypassword yourpassword mysecret yoursecret password123 password1 admin123 secret123 raspberry
""".split())

#: A name that says credential, the separator after it, and the value: ``name = value``, ``"name": "value"``,
#: ``name: value``, ``name value``, ``name - 'value'``, ``name := value``, ``password == '…'``, ``"name", "value"``,
#: ``name: NAME`` then ``value: …`` (Kubernetes' env lists), ``nameSECRET-value``. The name's own start is found by
#: looking back from its last word (a leading character run in the regex would make it quadratic).
ASSIGNMENT = re.compile(
    r"(?i:key|token|secret|credentials?|auth|bearer|passw(?:or)?d|passphrase|passcode|pwd|pass|access|private|pat)"
    r"(?P<number>\d{0,2})(?P<close>\\{0,7}[\"']\]?|\]|)"
    r"(?P<sep>[ \t]*(?:::=|:=|=>|->|===?|!==?|[:=]|[ \t]-[ \t]|(?:[,\n]|\\n)[ \t-]*[\"']?value[\"']?:|,"
    r"|[ \t]value[ \t]*=|[ \t]*\{\s*default[ \t]*=)[ \t]*"
    r"|[ \t]*\n\s*=(?![=>])\s*|[ \t]*=[ \t]*\n\s*|\{\s*(?=[\"'])|\([^()\n]{0,24}\)[^{}:\n]{0,24}[{:]\s*return[ \t]+"
    r"|[ \t]+is[ \t]+(?=[\"'])|[-.](?=[A-Za-z0-9])|[ \t]+)"
    r"\\{0,7}(?P<open>[\"'`]?)[ \t]*(?P<value>[^\s\"'`<>,;&\\)}\]|]{1,512})")
#: Separators that take a quoted value only: a comparison in code (``password == '…'``), prose (``the password is
#: '…'``), a pair of strings after a quoted name (``.Add("AccountKey", "…")``, ``<add key="ApiKey" value="…"/>``,
#: Terraform's ``variable "api_token" { default = "…" }``), a brace initialiser (``AccountKey{"…"}``), a getter
#: that returns a literal (``getApiToken() string { return "…" }``).
_QUOTED_ONLY = frozenset({"==", "!=", "===", "!==", "is", ",", "value=", "{default=", "{"})
_PAIRED = frozenset({",", "value=", "{default="})
#: The shortest value glued to its name by one '-' or '.', and the data in it (:func:`_data`): a slug's or a pod's
#: name ('my-secret-7f9c8b6d5-x2k4p') has less.
_GLUED_VALUE = 16
#: The same, read in lower-cased text (three to five times faster than a case-blind regex).
_ASSIGNMENT_LOWER = re.compile(ASSIGNMENT.pattern.replace("(?i:", "(?:", 1))
#: Names that take their value after blanks alone (a .netrc's 'password', 'Bearer', 'APIKEY'), not 'pass' or 'key'
#: in prose.
_SPACED = re.compile(r"(?:password|passwd|token|secret|bearer|(?-i:KEY|TOKEN|SECRET|PASSWORD|PWD|ACCESS|PRIVATE))\b",
                     re.I)
_SCHEME = re.compile(r"^(?:bearer|basic|token)[ \t]+", re.I)
#: A header's or a scheme's name before the token in a quoted value ('"X-Authorization pk_…"'): the token is judged.
_ANY_SCHEME = re.compile(r"^[A-Za-z][\w\-]{0,30}[ \t]+(?=\S+$)")
#: The default a reference falls back to: ``process.env.API_KEY || "…"``, ``config.token ?? '…'``.
_FALLBACK = re.compile(r"\s*(?:\|\||\?\?)\s*([\"'])([^\"'\n]{6,512})\1")
#: An XML element named as a credential (``<password>…</password>``, ``<secret>{…}</secret>``).
ELEMENT = re.compile(r"<(?P<tag>[A-Za-z][\w.\-:]{0,60})>(?P<value>[^<>\n]{6,512})</(?P=tag)>")
#: Command lines that take a password, for any program, by the option's name: sshpass's ``-p PASS``, MySQL's and
#: MariaDB's ``-pPASS`` (glued: after a blank comes the database's name, the password being asked for), an option
#: named password (``--password=PASS``, ``--passwd PASS``, ``-Password PASS``, ``/password:PASS``), and ``-p`` or
#: ``/p:`` after a user option on the same line (``-u alice -p PASS``, ``--user alice -pPASS``, ``/u:alice /p:PASS``):
#: ``-P`` alone names a port as often as a password, and ``/p:`` alone a build property.
COMMAND = re.compile(r"(?:(?i:sshpass)\b[^\n]{0,120}?[ \t]-p[ \t]*|(?i:mysql\w*|mariadb\w*)\b[^\n]{0,120}?[ \t]-p(?=\S)"
                     r"|(?<![^\s\"'`])(?:--?|/)(?i:passw(?:or)?d)(?:[ \t]*[=:][ \t]*|[ \t]+)"
                     r"|(?<![^\s\"'`])(?:-u|-U|--user(?:name)?|/u(?:ser)?:)(?:[ \t]+|[=:]|(?=\w))[^\s\-][^\n]{0,80}?"
                     r"[ \t](?:-p[ \t]*|/p:))"
                     r"(?P<open>[\"']?)(?P<value>[^\s\"'`\-][^\s\"'`]{3,255})")
#: A container registry's login (Docker's, Podman's, Buildah's, nerdctl's, skopeo's, oras', Helm's) takes ``-p PASS``
#: with or without a user option; read apart from :data:`COMMAND`, only where 'login' is in the text.
REGISTRY_LOGIN = re.compile(r"(?i:(?:docker|podman|buildah|nerdctl|skopeo|oras|helm[ \t]+registry)[ \t]+login)\b"
                            r"[^\n]{0,120}?[ \t]-p[ \t]*"
                            r"(?P<open>[\"']?)(?P<value>[^\s\"'`\-][^\s\"'`]{3,255})")
#: A header written in text (a script, a config, a body), not sent as one: ``Authorization: Basic <base64 of
#: user:password>``, ``Authorization: Bearer <token>``, ``"Authorization": "Token <token>"``; the scheme is any
#: word (Okta's ``SSWS``), the credential after it judged as a token under a name that says so.
AUTHORIZATION = re.compile(r"(?i:(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?[ \t]*"
                           r"(?P<scheme>[A-Za-z][A-Za-z0-9_\-]{1,20})[ \t]+(?P<value>[A-Za-z0-9+/_\-.~=:%$\{}]{1,1024})")

#: A credential's name written as two words, the first of them one that says which credential ('access key', 'API
#: key', 'private key', 'client secret', 'auth token'): read as one name, so a value may follow after blanks.
_SPELLED = re.compile(r"(?<![A-Za-z0-9_.\-])(?i:(access|secret|api|private|auth|client|app|application|account|"
                      r"master|signing|encryption|session|refresh|bot|personal|license|service))[ \t]+$")
#: Where the name (identifier characters) ends, walking back from its last word.
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-]{0,64}$")
#: Words of a name or a value: 'npmAuthToken' is npm, Auth, Token; 'APIKey' is API, Key.
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_VOWELS = frozenset("aeiouy")
#: A time-based UUID (version 1): a clock and a node id, no secret in it.
TIME_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
#: A token's alphabet: base64's, hex's and base58's, with the separators issuers put inside ('.', '~', ':'),
#: percent-escapes and '=' (URL-encoded and query-string-shaped tokens; not first: a leading '=' is a separator),
#: and brackets some issuers' alphabets have.
_TOKEN_ALPHABET = re.compile(r"^[A-Za-z0-9+/_\-.~%:\[\]][A-Za-z0-9+/_\-.~%=:\[\]]*$")
#: Words that make a value a variable's or a field's name rather than a passphrase ('user_password', 'newValue').
_CODE_WORDS = frozenset("""pass passwd password pwd secret token key auth credential credentials hash hashed salt
value val input field var arg args param params config conf settings data text str string user username name
self this new old get set env default current my your our the db form request req""".split())


def credential_name(name: str) -> tuple[bool, bool]:
    """(is a credential's name, is a password's name) for an identifier such as ``npm_authToken`` or ``API-KEY``:
    its last word says credential, and what comes before is words (``larksuite``), not a random run that happens
    to end in 'key'."""
    words = [w.lower() for w in _CAMEL.findall(name)]
    if not words:
        return False, False
    last = words[-1]
    if last in _QUALIFIERS and len(words) == 1 and not name.strip("\"'[]\\_-.").isupper():
        return False, False  # 'access: public', 'private = true'; 'ACCESS …' after a provider's name counts
    glued = _GLUED.search(last) if last not in _LAST_WORDS | _QUALIFIERS else None
    if glued and glued.group() == "pass" and last not in _GLUED_PASS:
        glued = None  # 'bypass', 'compass'
    if last not in _LAST_WORDS | _QUALIFIERS and not (glued and _word(last[:glued.start()])):
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


#: A printf-style conversion ('%s', '%0.f', '%-10d'): a format that a value is put into.
_FORMAT = re.compile(r"%(?:\(\w+\))?[-+ #0]*\d*(?:\.\d*)?[sdifeEgGxXrc]")
#: A percent-escape ('%3D'): a URL-encoded value, judged as what it decodes to.
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_decoded(value: str) -> str:
    """``value`` percent-decoded when it is URL-encoded: every '%' starts an escape and the bytes are UTF-8 text.
    Otherwise the '%' is one of its characters (a token's alphabet with '%' in it: ``…RF%tjHN…%E4UY…``), and
    decoding would turn it into other characters than the ones sent."""
    if _STRAY_PERCENT.search(value):
        return value
    try:
        return urllib.parse.unquote_to_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return value


def placeholder(value: str) -> bool:
    """A template, reference or redaction: it stands for a credential and carries none."""
    lowered = value.lower()
    if value[:1] in "$%@&" or "${" in value or "{{" in value:
        return True
    if _FORMAT.search(value) and _data(_FORMAT.sub(" ", value)) < MIN_TOKEN:
        return True  # a format ('Bearer %s', 'key-%d'); a '%E' inside a long random run is a character of a token
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


def strong_name(name: str) -> bool:
    """The name says token, secret, auth or password outright (``npm_authToken``, ``SECRET``), not ``key``."""
    words = _CAMEL.findall(name)
    return bool(words) and not words[-1].lower().endswith(("key", "bearer"))


#: A credential's own words: a value made of words with one of them in it names a credential.
_NAMING_WORDS = _PASSWORD_WORDS | {"secret", "token", "credential", "credentials", "apikey"}


def names_a_credential(value: str) -> bool:
    """Words that name a credential in its place, letters only with one of a credential's own words among them:
    an environment variable's or a template's name (``YOUR_PASSWORD``, ``REPLACE_WITH_PASSWORD``,
    ``dbSecret``), not a password (``Tr0ub4dor``, ``sunshine42``, ``correcthorse`` have none, or digits)."""
    if not re.fullmatch(r"[A-Za-z]+(?:[_\-.][A-Za-z]+)*", value) or not all(map(_plain, value.replace("-", "_")
                                                                                  .replace(".", "_").split("_"))):
        return False  # letters that make no words ('TqGlXzWk_PASSWORD') are data beside the word
    return bool(_NAMING_WORDS.intersection(p.lower() for p in _CAMEL.findall(value)))


def passphrase(value: str, quoted: bool = False) -> bool:
    """Words a person chose as a password: joined without blanks, two or more in quotes (``'open_sesame'``) and
    three or more bare (``CorrectHorseBatteryStaple``: two bare words are as likely a variable, ``index_info``),
    or words with a symbol inside (``super$ecret``). Not a variable's name (``user_password``, ``newValue``: a
    word of code or a credential's own word in it), nor a stand-in (``my_password``)."""
    if len(value) < MIN_PASSWORD or re.search(r"\s", value) or placeholder(re.sub(r"[_\-.]", "", value)):
        return False
    pieces = [p.lower() for p in _CAMEL.findall(value)]
    if not pieces or _CODE_WORDS.intersection(pieces) or not all(p.isdigit() or _word(p) for p in pieces):
        return False
    if re.search(r"[/\\#:,;()\[\]{}<>=]", value):
        return False  # a path, a route, a call: not words a person chose
    symbol = re.search(r"[A-Za-z][!$%^&*@+~][A-Za-z]", value)  # a letter swapped for a symbol: 'super$ecret'
    return bool(symbol) or sum(p.isalpha() and len(p) >= 3 for p in pieces) >= (2 if quoted else 3)


#: Shortest value judged by :func:`filled` (a shorter one is judged by its set of characters alone).
MIN_FILLED = 12


def filled(value: str) -> bool:
    """``value`` is nearly all one character said again: four of five of its letters and digits repeat the one
    before (``aaaa…aaaend``, ``0000…00001``), a stand-in padded to a length with a word at its end. A random
    token of any alphabet is far from it. Sequences (``abcdef123456``) are not judged here: the scanners' own
    tests label them secrets by the hundred, and they count as data."""
    chars = [c for c in value.lower() if c.isalnum()]
    if len(chars) < MIN_FILLED:
        return False
    return sum(a == b for a, b in zip(chars, chars[1:])) >= 0.8 * (len(chars) - 1)


#: A regular expression's marks (a class with a range, a counted repeat): a value's pattern, not a value.
_PATTERN = re.compile(r"\[[^\]]*\w-\w[^\]]*\]|\{\d+(?:,\d*)?\}|\(\?[:=!<]")


def _punctuated(value: str) -> bool:
    """A generated secret with punctuation in its alphabet (Django's ``SECRET_KEY = 'django-insecure-…^!…'``):
    long, no blanks, printable ASCII, random by its entropy, and three symbols or more outside a token's alphabet
    (one stray character, a '?' or a '!', is a token's typo or a mangled paste, not an alphabet); read only in
    quotes, which say where it ends."""
    return len(value) >= 16 and value.isascii() and value.isprintable() and not re.search(r"\s", value) \
        and len(set(re.sub(r"[A-Za-z0-9+/_\-.~%=:\[\]]", "", value))) >= 3 and entropy(value) >= 3.5 \
        and not _PATTERN.search(value)


def credential_value(value: str, password: bool = False, hex_alone: bool = True, strong: bool = False,
                     quoted: bool = False) -> bool:
    """``value`` is long enough for a credential, in a credential's alphabet, and carries data (not words, numbers,
    code or a stand-in). A password may be shorter and use any printable character, and may be words
    (:func:`passphrase`); a token's alphabet is base64's, hex's and base58's with a few separators.
    ``hex_alone``: a run of hex digits counts (after a bare 'key' it is as likely a hash). ``strong``: the name
    says token, secret or password outright (:func:`strong_name`): a time-based UUID counts (the name outweighs
    the UUID's version), and so does a short token (:data:`MIN_SHORT`) of letters and digits mixed.
    ``quoted``: the value was written in quotes (a string, not a variable). A URL-encoded value is judged as what
    it decodes to (``secret%3Dpassword`` is words)."""
    value = value.strip()
    if _ESCAPE.search(value):
        value = url_decoded(value)
    shortest = MIN_PASSWORD if password else MIN_SHORT if strong else MIN_TOKEN
    if len(value) < shortest or placeholder(value) or code(value) or "://" in value \
            or (TIME_UUID.match(value) and not strong):
        return False
    if value.isdigit() and len(value) < MAX_ID and not password and not strong:
        return False  # under a key's name, a number is an id (an app's, an account's), a 64-bit one at most
    if not password and len(value) < MIN_TOKEN:  # short: one run of letters and digits mixed through it
        return value.isalnum() and value.isascii() and not _plain(value) and len(set(value.lower())) >= 6 \
            and bool(re.search(r"[A-Za-z][0-9]+[A-Za-z]|[0-9][A-Za-z]+[0-9]", value))  # not 'sdlfkj452'
    if not password and not _TOKEN_ALPHABET.match(value):
        return quoted and _punctuated(value)  # its symbols, spread through it, are its data
    if len(set(value.lower())) <= 2 or filled(value):
        return False  # filler: 'xxxxxxxx', '00000000', 'aaaa…aaaend'
    if not hex_alone and re.fullmatch(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*", value):
        return False
    data = _data(value)
    if password:
        if value.startswith(("/", "./", "~/")):
            return False  # a path: 'PWD: /home/user'
        return data >= 4 or passphrase(value, quoted)
    # Letters and digits mixed through the value, or letters that are no words: data. Entropy breaks a tie.
    return data >= 12 or (data >= 8 and entropy(value) >= 3.0)


def _data(value: str) -> int:
    """Characters of ``value`` in runs that are not words or small numbers (:func:`_plain`)."""
    return sum(len(run) for run in re.findall(r"[A-Za-z0-9]+", value) if not _plain(run))


def find(text: str, lowered: str | None = None) -> str | None:
    """The first value in ``text`` kept under a credential's name (its kind: 'named', 'element' or 'command').
    ``lowered``: ``text.lower()``, when the caller has it (names are found in it, a case-blind regex being slower)."""
    if lowered is None or len(lowered) != len(text):
        lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer ('İ'): positions would not agree
        lowered = text
    pattern, source, pos = (_ASSIGNMENT_LOWER, lowered, 0) if lowered is not text else (ASSIGNMENT, text, 0)
    while match := pattern.search(source, pos):
        pos = match.end("close")  # after a name that is passed over, its value may hold one ('Auth-Service-Key = …')
        start, at = match.start(), match.start("value")
        close, opening = text[match.end("number"):match.end("close")], match.group("open")
        sep = "".join(match.group("sep").split())
        if sep in _QUOTED_ONLY and not (opening and (sep not in _PAIRED or close.strip("\\]"))):
            continue  # a comparison, prose, a pair of strings: the value is the quoted literal after a quoted name
        option = text[max(0, start - 64):start].rsplit(" ", 1)[-1].startswith("-")
        # A name written as words ('access key', 'API key', 'client secret'): the word before joins the name.
        spelled = start and text[start - 1] in " \t" and _SPELLED.search(text, max(0, start - 24), start)
        head = _NAME_CHARS.search(text, max(0, start - 64), start)
        if head.group()[:1] in ("n", "r", "t") and text[head.start() - 1:head.start()] == "\\":
            head = _NAME_CHARS.search(text, head.start() + 1, start)  # '\npage_token': an escape, then the name
        # A name of two words or more ('extractorapi_key', 'hellosign-PRIVATE-key'): an identifier, not prose, so
        # blanks alone may separate it from its value; one '-' or '.' may glue a value to it, or to a word glued to
        # its credential's word ('codakey-…'; not a word alone: 'secret-manager', '/token-exchange/…').
        words = _CAMEL.findall(head.group() + text[start:match.end("number")])
        if sep == "" and not match.group("close") and not option and not spelled \
                and not _SPACED.match(text, start) and len(words) < 2:
            continue  # 'pass the value', 'the secret ingredient': prose, not an assignment (nor '--api-key VALUE')
        glued = match.group("sep") in ("-", ".")  # not ' - ', a separator of its own
        if glued and not (len(words) >= 2 or words and words[-1].lower() not in _LAST_WORDS | _QUALIFIERS):
            continue
        value = text[at:match.end("value")]
        if len(value) < 6 and not opening:
            continue  # too short for a credential; in quotes the string may go on past a quote of the other kind
        if glued:  # 'cloudplanSECRET-ABCD…', 'codakey-<uuid>': the value is one token, a long one
            value = re.match(r"[A-Za-z0-9_\-.+=]*", value).group()
            if len(value) < _GLUED_VALUE or _data(value) < _GLUED_VALUE:
                continue
        if opening:  # a quoted value is the whole string: 'abc()def' is not 'abc'
            end = text.find(opening, at, at + 513)
            value = text[at:end].rstrip("\\") if end >= 0 else value  # '\"' closes it too
            value = _SCHEME.sub("", value)  # '"Bearer eyJ…"': the scheme, then the credential
        elif placeholder(value) or code(value):  # a reference: the literal it falls back to, if any, is the value
            fallback = _FALLBACK.match(text, match.end("value"))
            value, opening = (fallback.group(2), fallback.group(1)) if fallback else (value, opening)
        name = (spelled.group(1) + "_" if spelled else head.group()) + text[start:match.end("number")] + close
        name = re.sub(r"\d+$", "", name.strip("\"'[]\\"))  # 'token1', 'secret_key2': numbered names
        is_name, password = credential_name(name)
        if not is_name or value.isdigit() and _CAMEL.findall(name)[-1].lower() in _QUALIFIERS:
            continue  # 'last_access = 1700000000000': a time, a count
        password = password or name.lower() == "_auth"  # npm's '_auth': a user's password, often words
        if sep == ",":
            password = False  # '"cachemgr_passwd", "cache_peer"': a list of names, judged as a token, not words
        if opening and not password:
            value = _ANY_SCHEME.sub("", value)
        # A bare 'key' may name a hash; in a URL's query ('?key=…') it names an API key.
        bare_key = re.sub(r"[^a-z]", "", name.lower()) == "key" and not (start and text[start - 1] in "?&")
        if credential_value(value, password, hex_alone=not bare_key, strong=strong_name(name), quoted=bool(opening)):
            return "named"
    if "</" in text:
        for match in ELEMENT.finditer(text):
            is_name, password = credential_name(match.group("tag").rsplit(":", 1)[-1])
            if is_name and any(credential_value(piece.strip("{}()[].,;:"), password)  # a sentence's or statement's end
                               for piece in match.group("value").split()):
                return "element"
    if "-p" in lowered or "/p" in lowered:  # every form has one: '-p', '--password', '-Password', '/p:', '/passwd:'
        logins = REGISTRY_LOGIN.finditer(text) if "login" in lowered else ()
        for match in itertools.chain(COMMAND.finditer(text), logins):
            value = match.group("value")
            if credential_value(value, password=True):  # not '--password options' in prose
                return "command"
    if "authorization" in lowered:
        for match in AUTHORIZATION.finditer(text):
            if written_authorization(match.group("scheme"), match.group("value")):
                return "authorization"
    return None


def written_authorization(scheme: str, value: str) -> bool:
    """An ``Authorization`` value written in text carries a credential: Basic's base64 decodes to ``user:password``
    whose password is one (:func:`credential_value` for a password); another scheme's token has a token's alphabet
    and length, eight characters or more, the header's name saying what it is."""
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, colon, password = decoded.partition(":")
        return bool(colon) and decoded.isprintable() and credential_value(password, password=True)
    return credential_value(value, strong=True)


#: A provider's name as a name of its own, then a separator and a value: ``SENDGRID = "…"``, ``softlayer: …``,
#: ``github '…'`` (after blanks only a quoted value). ``{names}`` is the providers found in the text.
_PROVIDER = (r"(?<![a-z0-9])(?:{names})[a-z0-9]{{0,12}}(?P<close>[\"']?)"
             r"(?P<sep>[ \t]*(?:::=|:=|=>|[:=])[ \t]*|[ \t]+(?=[\"'`]))(?P<open>[\"'`]?)[ \t]*"
             r"(?P<value>[^\s\"'`<>,;&\\)}}\]|]{{12,512}})")


@functools.lru_cache(maxsize=256)
def _provider_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """The provider-name rule for these names, longest first (compiled once per set of names a text holds)."""
    return re.compile(_PROVIDER.format(names="|".join(map(re.escape, names))))


def find_provider(text: str, lowered: str, providers: frozenset[str]) -> str | None:
    """'provider' when ``text`` keeps a token-shaped value under a provider's name alone (the name's last word is
    the provider's, or starts with a name of five letters or more: ``SONARQUBE`` for ``sonar``): the name says
    what the value is for as ``api_key`` would. The value is judged as a token (:func:`credential_value`);
    ``lowered`` is ``text.lower()`` of the same length."""
    present = [name for name in providers if name in lowered]
    if not present or len(lowered) != len(text):
        return None
    for match in _provider_pattern(tuple(sorted(present, key=lambda name: (-len(name), name)))).finditer(lowered):
        start = match.start()
        head = _NAME_CHARS.search(text, max(0, start - 64), start).group()
        name = head + text[start:match.start("close")]
        words = [w.lower() for w in _CAMEL.findall(name)]
        if not words or not any(words[-1] == p or (len(p) >= 5 and words[-1].startswith(p)) for p in present):
            continue  # 'github_url', 'slack_channel': the provider's name is not the last word
        if match.group("sep") == ":" and not match.group("open"):
            continue  # 'arn:aws:sns:…', 'github:user/repo': a path of names, not an assignment
        value = text[match.start("value"):match.end("value")]
        if match.group("open"):  # a quoted value is the whole string
            end = text.find(match.group("open"), match.start("value"), match.start("value") + 513)
            value = text[match.start("value"):end] if end >= 0 else value
        if credential_value(value):
            return "provider"
    return None

