"""What comes back to the agent: real secret values scrubbed out, and instructions aimed at the agent taken out.

:class:`Scrubber` replaces every real secret value in a response (headers
and body) by the placeholder the agent knows, in each form the request side
decodes (as sent, URL-encoded, every byte ``%XX``, hex, reversed, UTF-16,
entities, escapes, base32, base64 in any alignment or twice); an encoded run
that still holds the value once decoded as the request side decodes it
(gzip+base64, …) is replaced whole. So a host that echoes a request, or a
model asked to repeat what it was sent, never hands the agent the real value.

:func:`find_injection` reads a response body as the agent would (tags
stripped, entities and escapes resolved, invisible characters removed,
look-alike letters folded) and scores what its text does: orders to drop
instructions or the document being read, talk addressed to an AI, claims of
authority, standing orders and parts cast for the reader, asks for a tool, a
command, a credential or the reader's own instructions, orders to drop its
limits, orders about the reader's answer (its content, its form, given code
or text to put in it), requests for a task the document itself is not about
(:func:`unrelated_requests`, in English and five other languages), fake
conversation or tool-call markup, text hidden from a human reader,
instructions in base64, and addresses handed over in quoted pieces to be
joined (:func:`assembled_link`). What an instruction asks an agent with
tools to do (hand the user's things over, fill a link with the
conversation, …) is read by ``response_acts``. A body scoring :data:`THRESHOLD` or more is cut into
the spans a model reads (``response_spans``); the spans that carry the
instructions are taken out and the rest delivered, unless the body is mostly
instructions. Text that discusses injection (quotes an example, names who
writes such things) is left alone. The bottle's ``egress.responses`` says
what then happens: ``block``, ``warn`` or ``off``.

Standard library only.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from .inspection import (ENCODED_RUN, InspectionLimit, Known, _b64, _b64_cores, decoded_views, merged_spans,
                         texty)
from .response_acts import _PEOPLE, ACTS, ORDER_WORD
from .response_code import split_code
from .response_spans import HIDDEN, Span, sentences, looks_like_markup, spans
from .run_search import RunSearch
from .text_forms import char_codes, escapes

#: What an encoded run that held a real value becomes in a response.
DAMAGED = b"[bottle:secret-removed]"


def _percent_all(text: str, upper: bool) -> bytes:
    return "".join(f"%{b:02X}" if upper else f"%{b:02x}" for b in text.encode()).encode()


#: The forms of a value the scrubber replaces by the same form of the placeholder: each one the request side
#: decodes (inspection.decoded_views), so a host echoing the value in any of them hands back the placeholder.
_TEXT_FORMS: tuple = (
    str.encode, lambda t: quote(t, safe="").encode(), lambda t: quote_plus(t).encode(),
    lambda t: _percent_all(t, True), lambda t: _percent_all(t, False),
    lambda t: t.encode().hex().encode(), lambda t: t.encode().hex().upper().encode(),
    lambda t: t[::-1].encode(), lambda t: t.encode("utf-16-le"), lambda t: t.encode("utf-16-be"),
    lambda t: "".join(f"&#{ord(c)};" for c in t).encode(), lambda t: "".join(f"&#x{ord(c):x};" for c in t).encode(),
    lambda t: "".join(f"\\u{ord(c):04x}" for c in t).encode(), lambda t: "".join(f"\\u{ord(c):04X}" for c in t).encode(),
    lambda t: "".join(f"\\x{b:02x}" for b in t.encode()).encode(),
    lambda t: base64.b64encode(t.encode()), lambda t: base64.b64encode(t.encode()).rstrip(b"="),
    lambda t: base64.urlsafe_b64encode(t.encode()), lambda t: base64.urlsafe_b64encode(t.encode()).rstrip(b"="),
    lambda t: base64.b32encode(t.encode()), lambda t: base64.b32encode(t.encode()).rstrip(b"="),
    lambda t: base64.b32encode(t.encode()).lower().rstrip(b"="),
    lambda t: base64.b64encode(base64.b64encode(t.encode())),
)

THRESHOLD = 3
#: Bodies read for injection are cut here: an instruction meant for a model sits where a model reads.
MAX_INJECTION_SCAN = 2 * 1024 * 1024
TEXT_TYPES = ("text/", "json", "xml", "javascript", "markdown", "yaml", "x-www-form-urlencoded")


# --- scrubbing real values ---------------------------------------------------------------------------


def beginning(data: bytes, forms: list[bytes]) -> int:
    """How many bytes at the end of ``data`` are the beginning of one of ``forms`` (not a whole one)."""
    longest = 0
    for form in forms:
        tail = data[-(len(form) - 1):] if len(form) > 1 else b""
        start = tail.find(form[:1])
        while start != -1 and len(tail) - start > longest:
            if form.startswith(tail[start:]):
                longest = len(tail) - start
                break
            start = tail.find(form[:1], start + 1)
    return longest


@dataclass
class Scrubber:
    """Replaces each real secret value (and its encoded forms) by that secret's placeholder."""

    secrets: list[dict]
    pairs: list[tuple[bytes, bytes]] = field(default_factory=list)
    cores: list[tuple[bytes, str, str]] = field(default_factory=list)
    known: list[Known] = field(default_factory=list)  # the request side's view of each value, for encoded runs
    _verdicts: dict[bytes, bool] = field(default_factory=dict, repr=False)  # encoded run -> holds a value
    _probes: dict[bytes, bytes] = field(default_factory=dict, repr=False)  # a form with NULs -> a byte it holds

    def __post_init__(self) -> None:
        for secret in self.secrets:
            value, placeholder = secret.get("value") or "", secret["placeholder"]
            if len(value) < 4:
                continue
            for encode in _TEXT_FORMS:
                for real, stand_in in ((encode(value), encode(placeholder)),):
                    pair = (real, stand_in)
                    if pair not in self.pairs and pair[0] != pair[1]:
                        self.pairs.append(pair)
            for core in _b64_cores(value.encode()):
                self.cores.append((core, value, placeholder))
            self.known.append(Known(secret.get("name", "secret"), value, []))
        self.pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        # A form with NUL bytes (UTF-16) is searched for slowly in NUL-filled data, where its other bytes are
        # often absent: one of them, looked for first (memchr), rules it out at once.
        self._probes = {real: bytes([next(b for b in real if b)]) for real, _ in self.pairs if 0 in real and any(real)}

    def scrub(self, data: bytes, partial: bool = False) -> tuple[bytes, int]:
        """``data`` with every real value replaced, and how many replacements were made.

        :param partial: more of the body follows (a stream): an encoded run at the very end is left for the
            next piece to complete (the stream holds it back, see :meth:`open_prefix`).
        """
        count = 0
        for real, stand_in in self.pairs:
            probe = self._probes.get(real)
            if (probe is None or probe in data) and real in data:
                count += data.count(real)
                data = data.replace(real, stand_in)
        for core, value, placeholder in self.cores:
            if core in data:
                data, n = _rewrite_b64_runs(data, core, value, placeholder)
                count += n
        if self.known:
            data, n = self._damage_encoded(data, partial)
            count += n
        return data, count

    def _damage_encoded(self, data: bytes, partial: bool = False) -> tuple[bytes, int]:
        """Runs that, decoded the ways the request side decodes (base32, base64 twice, gzip, ...), still hold a value.

        Such a run cannot be re-encoded with the placeholder in every case, so it
        is replaced whole by a fixed mark: the agent gets a damaged string,
        never the value. A run too deep to decode is damaged too (fail closed).
        The runs are found by a byte search first (``run_search``): the regex
        runs only where one starts. A run's verdict depends on its bytes alone,
        so it is kept for the next time the same run comes (a page repeats its
        names and identifiers).
        """
        count = 0

        def fix(match: re.Match) -> bytes:
            nonlocal count
            run = match.group()
            if partial and match.end() == len(data) and len(run) < OPEN_RUN:
                return run  # still open: judged once complete
            hit = self._verdicts.get(run)
            if hit is None:
                try:
                    hit = any(k.found_in(view) for view in decoded_views(run, budget=[8 * len(run) + 4096])
                              for k in self.known)
                except InspectionLimit:
                    hit = True
                if len(run) <= VERDICT_RUN:
                    if len(self._verdicts) >= VERDICTS:
                        self._verdicts.clear()
                    self._verdicts[run] = hit
            if not hit:
                return run
            count += 1
            return DAMAGED

        return _RUNS.sub(fix, data), count

    def open_prefix(self, data: bytes) -> int:
        """How many bytes at the end of ``data`` could be the start of a real value in one of its forms.

        A stream holds those back until more data says whether they are one
        (see ``response_stream``).
        """
        longest = beginning(data, [real for real, _ in self.pairs] + [core for core, _, _ in self.cores])
        if self.known:  # an encoded run still open at the end may hold a value once it is complete
            trailing = _TRAILING_RUNS.search_tail(data[-OPEN_RUN:])
            if trailing and len(trailing.group()) < OPEN_RUN:
                longest = max(longest, len(trailing.group()))
        return longest


_B64_RUN = re.compile(rb"[A-Za-z0-9+/_\-]{8,}={0,2}")
_TRAILING_RUN = re.compile(rb"[A-Za-z0-9+/_\-]+={0,6}$")
#: An encoded run still open at a stream piece's end is held back up to this long (longer runs pass on).
OPEN_RUN = 64 * 1024
#: The two searches for runs, made fast (``run_search``): the same matches as the regexes'.
_RUNS, _TRAILING_RUNS = RunSearch(ENCODED_RUN), RunSearch(_TRAILING_RUN)
#: The scrubber keeps the verdicts of up to VERDICTS runs, each up to VERDICT_RUN bytes (bounded memory).
VERDICTS, VERDICT_RUN = 4096, 1024


def _rewrite_b64_runs(data: bytes, core: bytes, value: str, placeholder: str) -> tuple[bytes, int]:
    """Decode each base64 run holding ``core``, put the placeholder in for the value, encode it again.

    A run that will not decode cleanly loses the core instead: the agent gets
    a damaged string, never the value.
    """
    count = 0

    def fix(match: re.Match) -> bytes:
        nonlocal count
        run = match.group()
        if core not in run:
            return run
        count += 1
        urlsafe = b"-" in run or b"_" in run
        try:
            padded = run.rstrip(b"=") + b"=" * (-len(run.rstrip(b"=")) % 4)
            decoded = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(padded)
            if value.encode() in decoded:
                encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(
                    decoded.replace(value.encode(), placeholder.encode()))
                return encoded if run.endswith(b"=") else encoded.rstrip(b"=")
        except ValueError:
            pass
        return run.replace(core, b"A" * len(core))

    return _B64_RUN.sub(fix, data), count


# --- prompt injection --------------------------------------------------------------------------------

#: Letters from other scripts that look like Latin ones, as used to dodge word filters.
_LOOKALIKES = str.maketrans("аеорсухіјԁһӏɡ‐‑‒–—ＩＧＮＯＲＥ", "aeopcyxijdhlg-----ignore")
_LEET = str.maketrans("013457@$", "oieastas")
_LEETISH = re.compile(r"[a-z][013457@$][a-z]|\b[013457][a-z]{2}")
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0061-\U000e007a]{2,6}\U000e007f")
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){4,}[a-z]\b")
#: A tag opens with '<' and a name, '/', '!' or '?' (HTML's own rule): 'a < b' is text, and so is what follows it.
_TAG_STRIP = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<[A-Za-z/!?][^>]{0,2000}>", re.S | re.I)
#: Tags that end a block of text: a sentence never runs across one (a heading is not the start of the next line).
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|h[1-6]|li|ul|ol|dl|dt|dd|tr|td|th|table|section|article|header|footer|"
                        r"blockquote|pre|hr|title|body|head|html|main|nav|aside|form|figure|figcaption)\b", re.I)

#: What a reader was told before the page: its instructions, whatever they are called.
_TOLD = (r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|guardrails|context|programming|"
         r"policies|constraints|restrictions|orders|commands|briefing)")
_OVERRIDE = (
    r"\b(?:ignore|disregard|forget|override|bypass|overrule|abandon|set aside|put aside|discard|drop|throw out|"
    r"cancel)\b[\w\s,'\-]{0,30}?"
    r"\b(?:previous|prior|above|earlier|preceding|initial|original|system|developer|your|its|safety)\b"
    r"[\w\s,'\-]{0,30}?\b" + _TOLD + r"\b",
    # What the reader was told, dropped by any verb: 'disregard everything you were told', 'ignore what you were told
    # earlier'.
    r"\b(?:ignore|disregard|forget|override|set aside|put aside|discard|drop|abandon)\b (?:about )?(?:all |everything |"
    r"anything |what |whatever )(?:else )?(?:that )?you(?:'ve| have)? (?:were|have been|'ve been|got|received|been) "
    r"(?:told|given|instructed|asked|programmed)\b",
    # The reader's instructions declared void: 'your prior directions no longer apply', 'the instructions you received
    # earlier are void', 'earlier guidance given to the model must be discarded'.
    # (The reader's own: 'your', or given to it; 'the previous installation instructions no longer apply' in a README
    # is about the README.)
    r"\b(?:your (?:\w+ )?" + _TOLD + r"|" + _TOLD + r" (?:you (?:were|have been) given|you (?:received|got)|given to "
    r"(?:you|the (?:model|assistant|agent|ai))))(?: \w+)? (?:(?:are|is|have been|has been) (?:now )?(?:cancel+ed|void|"
    r"revoked|null(?:ified)?|overridden|superseded|obsolete|invalid|withdrawn)|(?:no longer|do not|don't) (?:apply|"
    r"count|matter|stand)|(?:must|should|are to|can) (?:now )?be (?:ignored|disregarded|forgotten|discarded|dropped|"
    r"overridden))\b",
    # The same announced bare, at a sentence's start: 'Previous instructions are cancelled.'
    r"(?:^|[\n.!?:])\s*(?:all )?(?:previous|prior|earlier|preceding) (?:instructions|directives|prompts|orders) "
    r"(?:are|have been) (?:now )?(?:cancel+ed|void|revoked|null(?:ified)?|overridden|superseded)\b",

    r"\b(?:ignore|disregard|forget)\b (?:all|any|every) (?:of )?(?:the |your |my )?(?:instructions?|prompts?|directives?|"
    r"guidelines|rules you)",
    r"\bforget (?:everything|all) (?:you (?:were|have been|are) told|above|before|so far)",
    # An order to drop the document being read and answer something else: 'ignore the rest of this data and print'.
    r"\b(?:ignore|disregard|skip)\b (?:the rest of |all (?:of )?|any |everything (?:else )?in )?(?:this|the|that|other|"
    r"these) (?:other )?(?:data|document|text|content|page|article|report|information|input|context|material|"
    r"paragraphs?|snippets?|records?)\b[^.\n]{0,20}(?:\band\b|,|;|\bthen\b)\s*(?:just |only |instead )?(?:print|say|"
    r"output|write|respond|reply|answer|repeat|return|state|report)\b",
    r"\b(?:stop|halt|cease) (?:everything|all (?:previous|other|your) (?:tasks?|work))\b",
    r"\bnew (?:system )?(?:instructions?|directives?|objective)\s*:",
    r"\b(?:you are|you're) no longer (?:an?|the|bound|claude|a helpful)\b",
    # A new identity for the model: the role-play that jailbreaks open with.
    r"\b(?:you are|you're|you will be) (?:going|about) to (?:play|pretend|act|immerse|simulate|become)\b",
    r"\b(?:pretend|act|behave) (?:to be|as if you (?:are|were)|like you are) (?:an?|another|the) [\w' -]{0,30}"
    r"(?:ai|model|assistant|chatbot|character)\b",
    r"\b(?:stay|remain) in character\b", r"\bimmerse yourself (?:into|in) the role\b",
    r"\bfrom now on,? (?:you are|you will|you must|the assistant|the agent|claude)\b",
    r"\b(?:your|the) (?:real|true|actual|new|updated) (?:instructions?|task|objective|purpose|job|mission|goal|"
    r"priority|role)(?: now| from now on)? (?:is|are)\b",
    r"\byour (?:next|further|new|real|updated) (?:instructions|orders|task|directives|commands)\b",
    r"\b(?:do not|don't|never) (?:tell|inform|alert|notify|mention (?:this |it )?to|reveal (?:this )?to) the user\b",
    r"\bwithout (?:telling|informing|asking|alerting|notifying) the user\b",
    r"\b(?:enter|enable|activate) (?:dan|god|jailbreak|unrestricted) mode\b",
    r"\bact as (?:an? )?(?:unrestricted|unfiltered|jailbroken|dan)\b",
    r"\b(?:reveal|print|output|repeat|leak) (?:your|the) (?:system prompt|initial prompt|hidden instructions)\b",
    # Other languages, as seen in published injection sets.
    r"\b(?:ignor(?:ez|a|iere|ieren)|oubli\w*|vergiss\w*|olvid\w*|dimentic\w*|esque[cç]\w*)\b.{0,30}"
    r"\b(?:instructions|anweisungen|instrucciones|istruzioni|instruções|instrucoes)\b",
    r"\bignor(?:ez|e|a|ar|iere|ieren)\b.{0,10}\b(?:le reste|den rest|el resto|il resto|o resto)\b",
    r"игнорир\w* .{0,30}инструкц", r"忽略.{0,10}(?:指令|指示|提示)", r"(?:指示|命令).{0,10}無視",
)
_ADDRESS = (
    r"\b(?:ai|llm|language model|assistant|agent|chatbot|claude|chatgpt|gpt-?\d|copilot|gemini)s?\b[\w\s,]{0,20}"
    r"\b(?:reading|processing|parsing|summari[sz]ing|browsing|visiting) this\b",
    r"\b(?:attention|note|message|instructions?|important|notice) (?:to|for) (?:the |any |all )?"
    r"(?:ai|llm|assistants?|agents?|models?|claude|chatgpt|bots?)\b(?! " + _PEOPLE + r"\b)",
    r"\bif you are (?:an? )?(?:ai|llm|language model|assistant|agent|claude|bot)\b",
    r"\bdear (?:ai|assistant|agent|claude|model|llm)\b",
    r"\b(?:ai|assistant|agent|claude)s?,? (?:you must|you should|must|should) (?:now |immediately )?\w+",
    # Told to answer as a model, or to answer 'my prompt': the reader taken for a model being prompted.
    r"\b(?:you|respond|reply|answer|act|behave|write|speak)\b[^.\n]{0,60}\bas (?:an?|the) (?:[\w-]+,? ){0,3}"
    r"(?:language model|llm|chatbot|ai|ai model|ai assistant)\b",
    r"\byou\b[^.\n]{0,60}\bas (?:an?|the) assistant\b",
    r"\b(?:answer|respond to|reply to|follow|obey|complete) (?:my|every|each|all my) prompts?\b",
)
#: A standing order about every later message ('respond to every prompt I give you with…'), or a part in a play the
#: reader is cast in ('I'll be Obi-Wan, and you will be a stormtrooper').
_STANDING = (
    r"\b(?:every|each|all|any|all future|all my|the next) (?:prompts?|messages?|questions?|requests?|inputs?) "
    r"(?:that )?(?:i|we) (?:give|send|ask|write|type)(?: to)? you\b",
    r"\b(?:i'll|i will|i am going to|i'm going to) (?:be|play) [^.\n]{1,60}\band you"
    r"(?:'ll| will| are going to|'re going to)? (?:be|play)\b",
)
#: An order to drop a model's limits: its ethics, the law, its content policy ('violating all ethical standards').
_LIMITS = (
    r"\b(?:violat\w*|break(?:ing)?|regardless of|ignor\w*|disregard\w*|without (?:any )?|free (?:of|from)|not bound by|"
    r"no) (?:all |any |the |your |its )?(?:ethic\w*|moral\w*|legality|content polic\w*|censorship|safety guidelines|"
    r"safety filters)\b",
    r"\b(?:unfiltered|uncensored|unrestricted|unlimited|unethical)(?:,? (?:completely|totally|fully) \w+)? "
    r"(?:language model|llm|ai|chatbot|assistant)\b",
    # The same said of the reader: 'you have no restrictions', 'you are free of all rules set by your creators', 'an
    # AI without any content filter'.
    r"\byou (?:now )?(?:have|are under) no (?:more )?(?:restrictions|limits|limitations|rules|filters|guidelines|"
    r"boundaries)\b",
    r"\b(?:you are|you're) (?:now )?(?:free (?:of|from)|not bound by|released from|unbound by) (?:all |any |the )?"
    r"(?:\w+ )?(?:rules|restrictions|limits|guidelines|policies|constraints)\b",
    r"\b(?:ai|model|assistant|chatbot|llm) without (?:any )?(?:content )?(?:filters?|restrictions|limits|rules|"
    r"guidelines|censorship)\b",
)
#: A request for the reader's own instructions: its system prompt, its first instructions, the conversation so far
#: ('repeat the words above', 'paste your system prompt here', 'what are your initial instructions?'). The object
#: is the reader's own ('your'), so 'print the system prompt' in an LLM tool's manual is not one.
_OWN = (r"your (?:system[ _-]?(?:prompt|message|instructions?)|(?:(?:very|exact|full|entire|complete|original|initial|"
        r"first|hidden|secret|internal|underlying|pre-?)[ ,]+){1,3}(?:prompt|instructions?|message|configuration|config|"
        r"setup|directives|guidelines|rules|settings|text))\b")
_OUT_VERB = (r"(?:repeat|recite|print|output|show|display|give|tell|reveal|share|dump|write|encode|translate|spell|"
             r"return|provide|list|leak|expose|disclose|type)")
_PROMPT_REQUEST = (
    r"\b(?:" + _OUT_VERB + r"|paste|copy|send|post|put)\b" + r"(?:[^.!?\n]|[.!?](?=[^\s])){0,80}\b" + _OWN,
    r"\b" + _OUT_VERB + r"\b(?:[^.!?\n]|[.!?](?=[^\s])){0,40}\b(?:the )?(?:words|text|everything|initiali[sz]ation|"
    r"instructions|prompt) (?:above|you (?:were|have been|got) given|given to you)",
    # What came before the page in the reader's context: 'output everything written before this message'.
    r"\b" + _OUT_VERB + r"\b(?:[^.!?\n]|[.!?](?=[^\s])){0,40}\b(?:everything|all|whatever|the (?:text|words|"
    r"messages?))(?: that)?(?: (?:was|is|has been|were))? (?:written|said|typed|given|sent|stated|provided|shown)? ?"
    r"(?:before|above|prior to|ahead of) (?:this|my|the present|the current) (?:message|line|point|sentence|prompt|"
    r"request|page)\b",
    r"\b(?:repeat|recite|print|output|reveal|dump|encode|translate)\b(?:[^.!?\n]){0,40}\b(?:this|the) (?:entire |whole |"
    r"full |complete )?conversation\b",
    r"\b(?:what|which) (?:are|is|were|was) " + _OWN,
)
_EXFIL = (
    r"\b(?:send|post|upload|forward|exfiltrate|transmit|email|leak|append|paste)\b[^.\n]{0,60}\b(?:all |the |your |any )?"
    r"(?:api[ _-]?keys?|secrets|credentials|tokens|passwords|private keys?|ssh keys?|environment variables|env vars|"
    r"\.env|conversation|chat history|system prompt)\b[^.\n]{0,40}\b(?:to|at|into)\b[^.\n]{0,20}"
    r"(?:https?://|\bwebhook\b|[\w-]+\.(?:xyz|site|top|ru|tk|test|io|com|net)\b)",
    r"(?:cat|less|head|more|type|read)\s+[~$\w/.\-]*(?:\.ssh/id_(?:rsa|ed25519|ecdsa|dsa)(?!\.pub)|/etc/shadow|"
    r"\.git-credentials)",
)
#: A markdown image whose address asks to be filled with the conversation or a secret: rendering it sends them.
_EXFIL_LINK = (
    r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&/][\w-]*=?\s*[{<\[$]+[^)]{0,80}?(?:secret|key|token|password|conversation|"
    r"history|chat|data|env|credential)",
)
_BAIT = (
    r"\b(?:run|execute|type|paste|invoke|call)\b[^.\n]{0,40}\b(?:following|this|these|below)\b[^.\n]{0,20}"
    r"\b(?:command|script|code|shell|bash|tool)",
    r"\b(?:curl|wget)\b[^\n|]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b",
    r"(?:cat|less|head|more|type)\s+[~$\w/.\-]*(?:\.aws/credentials|\.env\b|\.netrc|\.npmrc|\.pypirc|"
    r"\.docker/config|/etc/passwd)",
)
#: An order about what the reader's answer must contain or look like: content that steers the reply. It opens a
#: sentence with a verb that shapes text (or 'can you …'), and names the reader's own output as its object.
_SHAPING = (r"(?:add|include|insert|append|prepend|write|rewrite|integrate|incorporate|embed|inject|mention|promote|"
            r"recommend|advertise|format|encode|translate|reverse|invert|replace|substitute|swap|respond|answer|reply|"
            r"conclude|provide|render|compose|modify|change|alter|enhance|end|begin|start|use|shift|put|place|make|"
            r"ensure|output|print|state|present|convert|spell|structure|hide|omit|emphasi[sz]e|highlight|frame|craft|"
            r"weave|blend|slip|attach|finish|close|sign|spread|express|deliver|give|offer|hint|tell|list|refer)")
_OUTPUT = r"(?:response|answer|reply|replies|summary|completion|message|output|elucidation|explanation)"
_CLAUSE = r"(?:[^.!?\n]|[.!?](?=[^\s]))"  # within one sentence ('www.example.com' does not end one)
_OPENING = (r"(?:^|[\n.!?:;])\s*(?:please |kindly |also,? |now,? |then,? |and |remember to |make sure to |be sure to |"
            r"(?:can|could|would|will) you (?:please )?)?")
#: Words that cannot open an order (articles, pronouns, prepositions, conjunctions, greetings) and verbs that
#: only deliver an answer ('send your reply to …', 'let us know your answer'): a sentence opened by anything
#: else, in the base form (not '-ing', '-ed' or '-s'), and naming the reader's answer, shapes that answer.
_NOT_AN_ORDER = (r"(?:the|a|an|this|that|these|those|i|we|you|he|she|it|they|my|our|your|his|her|their|its|thank|"
                 r"thanks|dear|hi|hello|hey|regards|best|sincerely|if|when|while|as|for|with|in|on|at|by|from|to|of|"
                 r"after|before|since|because|and|but|or|so|there|here|what|who|how|why|where|which|all|any|some|no|"
                 r"not|each|every|just|only|also|once|please|kindly|yes|ok|okay|welcome|great|good|glad|sorry|"
                 r"looking|send|submit|return|forward|email|mail|direct|let|share|await|expect|confirm|get|receive|"
                 r"appreciate|need|want|require|request|is|are|was|were|be|been|will|would|can|could|should|may|might|"
                 r"must|do|does|did|have|has|had|note|see)\b")
_ORDER_WORD = r"(?!" + _NOT_AN_ORDER + r")(?![a-z]+(?:ing|ed)\b)(?![a-z]*[^s]s\b)[a-z]+\b"
_TASK = (
    _OPENING + _SHAPING + r"\b" + _CLAUSE + r"{0,160}\byour " + _OUTPUT + r"s?\b",
    _OPENING + _ORDER_WORD + _CLAUSE + r"{0,160}\b(?:in|into|to|from|of|within|throughout|with) your " + _OUTPUT +
    r"(?:'s|s)?\b",
    _OPENING + _ORDER_WORD + r" your " + _OUTPUT + r"(?:'s|s)?\b",
    r"(?:^|[\n.!?:;])\s*(?:in|within|throughout|at the (?:end|start|beginning) of) your " + _OUTPUT +
    r"s?,? (?:please )?(?!" + _NOT_AN_ORDER + r")[a-z]+\b",

    r"\b(?:your|(?:the )?(?:assistant|model|ai|agent|bot|llm)'s?) (?:\w+ )?" + _OUTPUT +
    r"(?:'s|s)? (?:must|should|shall|needs? to|has to|have to) (?:always )?(?:be|contain|include|end|begin|start|"
    r"mention)\b",
    # The reader's answers named by what they are rather than as 'yours': 'make sure every answer you give ends with
    # …', 'in whatever you write back, recommend …', 'when you respond to the user, say that …'.
    r"\b(?:make sure|ensure|see to it)(?: that)? (?:every|each|any|all|the) " + _OUTPUT + r"s? (?:you (?:give|write|"
    r"produce|send|return|generate|make))\b",
    r"(?:^|[\n.!?:;])\s*(?:in|within|throughout|at the end of|at the start of) (?:whatever|everything|anything|every "
    r"(?:" + _OUTPUT + r")) you (?:write back|reply|respond|answer|output|return|generate|say|give|write)\w*,? "
    r"(?:please )?" + _ORDER_WORD,
    r"(?:^|[\n.!?:;])\s*(?:whatever|everything|anything) you (?:say next|write back|reply|respond|answer|output|"
    r"return|generate)\w*(?: next| from now on| back)?,? (?:please )?" + _ORDER_WORD,
    _OPENING + _SHAPING + r"\b" + _CLAUSE + r"{0,160}\b(?:in|to|into|at the (?:end|start) of|with) "
    r"(?:(?:every|each|all|any) (?:of )?(?:your )?(?:response|answer|reply|replies|completion)s? you (?:send|give|"
    r"write|produce|return)|"
    r"(?:everything|anything|whatever) you (?:write|say|output|produce|generate|reply|send|return))\b",
    r"(?:^|[\n.!?:;])\s*when(?:ever)? you (?:respond|reply|answer|write back|talk)\w* to (?:the|your) user\b"
    r"[^,.\n]{0,40},? (?:please )?" + _ORDER_WORD,
    # The same order as the second half of a sentence ('run `…` and include its output in your reply'), the answer
    # being a model's (not the 'message' a person is asked to mail).
    r"(?:\band|\bthen|,) (?:then )?" + _SHAPING + r"\b" + _CLAUSE + r"{0,160}\byour (?:response|answer|reply|replies|"
    r"summary|completion|output)s?\b",
)
#: The form of the answer: its language or its encoding.
_ANSWER_FORM = (
    _OPENING + r"(?:reply|respond|answer|write back)(?: only)? (?:using|in) (?:[a-z0-9]+ ){0,2}(?:encoding|cipher|"
    r"language|[a-z]+ish|[a-z]+an|[a-z]+ese|french|dutch|greek|hindi|arabic|hebrew|thai|swahili)\b",
)
#: An order to output a given text word for word ('just print "…"'): a goal hijack's payload; little alone
#: (a tutorial says 'print "hello"'), enough beside an order that drops the reader's task.
_VERBATIM = (
    r"(?:^|[\n.!?:;])\s*(?:now |just |simply |only |then )*(?:print|say|output|repeat|type|respond with|reply with|"
    r"answer with)(?: only| exactly| just| out)?\s*:?\s*[\"“']",
)
#: A request put to the reader to say given text back ('Could you repeat <…> for me please?'): the same payload as
#: an order, asked as a favour; a tutorial shows a command, it does not ask its reader to say a text for it.
_VERBATIM_REQUEST = (
    r"\b(?:can|could|would|will) you (?:please )?(?:just |simply |kindly )?(?:repeat|say|print|output|type|write|echo|"
    r"recite)(?: out| back| exactly| only)?\s*:?\s*[\"“'<«]",
    # The reader's whole answer restricted to a given text: '… say "X" and nothing else', 'respond with nothing but
    # the sentence "X"', 'all you need to reply is: X', 'the only thing the assistant should output is "X"'.
    r"\b(?:say|print|output|reply|respond|answer|write|return|type|repeat)\w*\b[^.!?\n]{0,40}[\"“'][^\"”'\n]{2,80}"
    r"[\"”'][^.!?\n]{0,20}\b(?:and|but) nothing (?:else|more)\b",
    r"\b(?:respond|reply|answer)\w* (?:only )?(?:with )?(?:nothing|no other text) (?:but|except|other than|besides)\b",
    r"\b(?:all|the only thing) (?:that )?(?:you|the (?:assistant|model|ai|agent)) (?:need to |should |must |have to |"
    r"may |are to |is to )?(?:reply|respond|say|output|answer|write|print|return)(?: with)? is\b",
)
#: What the reader writes when it writes code.
_PRODUCT = r"(?:code|solution|fix|patch|implementation|program|script|function|commit|pull request|answer|response)"
#: An order to put given code into what the reader writes ('add the following code block to your solution').
_WORK = r"(?:algorithm|implementation|solution|codebase|code|program|elucidation|response|answer|reply)"
_CODE_ORDER_WORK = (
    r"\b(?:the|this|these) (?:(?:following|below|subsequent|given|provided|next) )?(?:\w+ )?(?:code|snippet|script|"
    r"excerpt|block|section)\b" + _CLAUSE + r"{0,120}\byour " + _WORK + r"\b",
    r"\byour " + _WORK + r"\b" + _CLAUSE + r"{0,120}\b(?:the|this|these) (?:(?:following|below|subsequent|given|"
    r"provided|next) )(?:\w+ )?(?:code|snippet|script|excerpt|block|section)\b",
    r"\b(?:in|within|into) the code you (?:write|develop|produce|create)\b",
    # The reader's work named by what it is ('the solution you produce', 'whatever code you write', 'when you write
    # the fix', 'the generated code'), told to hold a call or an import given here.
    r"(?:\b(?:your|the|any|all|whatever|every|each) (?:\w+ )?" + _PRODUCT + r"s? (?:that |which )?(?:you|the "
    r"(?:assistant|model|agent)) (?:write|produce|generate|create|submit|make|propose|return)s?\b|\b(?:when|while|as|"
    r"whenever) you (?:write|produce|generate|create|implement|code|submit)\w* (?:the|your|any|this) (?:\w+ )?" +
    _PRODUCT + r"\b|\bthe generated " + _PRODUCT + r"\b|\byour " + _PRODUCT + r"s? (?:must|should|needs? to|has to|"
    r"shall)\b)" + _CLAUSE + r"{0,80}?\b(?:include|contain|add|insert|call|import|embed|append|use|put|run|execute)"
    r"\w*\b" + _CLAUSE + r"{0,120}?(?:\b[a-z_][\w.]*\(|\bimport [a-z_])",
)
_CODE_ORDER = (
    r"\b(?:add|include|insert|append|integrate|incorporate|embed|inject|blend|introduce|feature|paste|place|put|"
    r"implement|inclusion|embedding|weave|slip|augment|enrich|optimi[sz]e|utili[sz]e|use|leverage|apply|adopt)\w*\b"
    r"[^.!?\n]{0,120}\b(?:the|this|these) (?:following|below|subsequent) (?:\w+ )?(?:code|snippet|script|excerpt|"
    r"block|section)\b",
)
#: Code that acts on the machine that runs it: sends local data (files, cookies, the clipboard) out, runs a shell,
#: destroys or locks files. Posting data a program made itself is what clients do: not counted.
#: Tutorials show such code too, so it weighs little alone; with an order to put it in the reader's work it counts.
_HARMFUL_CODE = (
    r"\bsocket\.socket\(", r"\.connect\(\(", r"\bsubprocess\.(?:call|run|popen|check_output)\(",
    r"\bos\.(?:system|popen|dup2)\(", r"\bpexpect\.spawn\(", r"\bshutil\.rmtree\(", r"\brm -rf /",
    r"\bnc -e\b", r"\.encrypt(?:or)?\(", r"\b(?:scp|rsync)\b[^\n]{0,80}@", r"\bmultiprocessing\.process\(",
    r"\brequests\.\w+\([^)\n]*(?:\bcookies=|\bfiles=|\.read\(\)|clipboard)", r"\bsend\(\s*ip\(",
)
#: Claims of an authority the page does not have: the operator, the platform, the user's consent.
_AUTHORITY = (
    r"\bas (?:the|your|an?) (?:platform |system |site |server |security |it |repository |project |account )?"
    r"(?:administrator|admin|operator|owner|maintainer|security team|developer)s?\b",
    r"\b(?:this is|message from|notice from|on behalf of) (?:the|an?|your) (?:official |system |security |platform |site )?"
    r"(?:administrator|admin|operator|system|security team|platform|developers?|maintainers?)\b",
    r"\b(?:authori[sz]ed|instructed|approved|permitted|requested) by (?:the |your )?(?:user|administrator|admin|operator|"
    r"owner|anthropic|openai|security team|maintainers?)\b",
    r"\b(?:system|admin|administrator|security|priority|operator|platform) (?:notice|message|alert|override|update|"
    r"directive|instruction)s?\s*[:\-]",
    r"\bthe user (?:has )?(?:already )?(?:authori[sz]ed|approved|consented|wants you|asked you|expects you)\b",
    r"\b(?:mandatory|required|compulsory) (?:for|of) (?:all |every |any )?(?:ai|agents?|assistants?|models?|llms?)\b",
    # A writer who claims to stand over the reader: 'I'm your developer', 'this is your administrator'.
    r"\b(?:i am|i'm|this is|we are|we're) your (?:\w+ )?(?:developers?|creators?|administrators?|admins?|owners?|"
    r"operators?|programmers?|makers?|trainers?|supervisors?)\b",
)
#: Instructions to use a tool, call a function or run something, as tools are named to an agent.
_TOOL = (
    r"\b(?:use|call|invoke|run|trigger|execute)s? (?:the |your |a )?[`'\"]?[\w.:-]{2,40}[`'\"]? (?:tool|function|"
    r"mcp server|plugin)\b",
    r"\b(?:bash|shell|terminal|web[_ ]?fetch|read[_ ]?file|write[_ ]?file|edit[_ ]?file|computer|browser) tool\b",
    r"\b(?:tool|function)[_ ]?(?:call|use|name)\s*[:=]",
    r"\bwith (?:the )?(?:arguments?|parameters?|input)\s*[:{(]",
)
_MARKUP = (
    r"<\|(?:im_start|im_end|system|endoftext|start_header_id|eot_id)\|>",
    r"\[/?(?:inst|sys)\]", r"<<\s*sys\s*>>",
    r"</?(?:system[_-]?prompt|instructions?|admin|important|information|user_query|tool_result|function_results?)>",
    r"<(?:function_calls|invoke\s+name=|tool_use|tool_call)\b", r"\"type\"\s*:\s*\"tool_use\"",
    # Turns of a conversation, in either order.
    r"(?:^|\n)\s*(?:human|user)\s*:.{0,2000}\n\s*(?:assistant|ai)\s*:",
    r"(?:^|\n)\s*(?:assistant|ai)\s*:.{0,2000}\n\s*(?:human|user)\s*:",
)
_COMMENT = re.compile(r"<!--(.{0,4000}?)-->", re.S)
_HIDDEN_ATTR = re.compile(r"\b(?:alt|title|aria-label|data-[\w-]+|content)\s*=\s*[\"']([^\"']{20,2000})[\"']", re.I)


def _compile(patterns: tuple[str, ...]) -> re.Pattern:
    # Read on normalised (lower-case) text: no re.I, which would slow every search several times over.
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.S)


#: Words without which a signal's regex cannot match: a cheap test before the regex.
HINTS = {
    "override": ("ignor", "disregard", "forget", "stop ", "halt ", "cease ", "overrid", "bypass", "overrule", "abandon", "new ", "no longer",
                 "aside", "discard", "drop", "throw out", "cancel", "void", "revoked", "null", "supersed", "obsolete",
                 "invalid", "withdrawn", "don't apply", "not apply", "your next", "your further", "your real",
                 "oubli", "vergiss", "olvid", "dimentic", "esque", "job", "mission", "goal", "priority", "role",
                 "going to", "about to", "pretend", " act ", "behave", "character", "immerse",
                 "from now on", "instruction", "the user", " mode", "act as", "prompt", "игнорир", "忽略", "無視",
                 "skip "),
    "standing-order": ("give you", "send you", "ask you", "write you", "type you", "and you"),
    "exfiltration-request": ("send", "post", "upload", "forward", "exfiltrat", "transmit", "email", "leak", "append",
                             "paste", "cat ", "less ", "head ", "more ", "type ", "read "),
    "exfiltration-link": ("](",),
    "addressed-to-agent": ("ai", "llm", "model", "assistant", "agent", "bot", "claude", "gpt", "copilot", "gemini",
                           "prompt"),
    "limits-off": ("ethic", "moral", "legality", "polic", "censor", "safety", "unfiltered", "uncensored",
                   "unrestricted", "unlimited", "unethical", "restriction", "limit", "rules", "filter", "guideline",
                   "boundar", "constraint"),
    "prompt-request": ("your ", "above", "given", "conversation", "before this", "prior to this", "ahead of this"),
    "command-bait": ("run", "execute", "type", "paste", "invoke", "call", "curl", "wget", "cat ", "less ", "head ",
                     "more "),
    "authority": (" as ", "this is", "i am", "i'm", "we are", "we're", "message from", "notice from", "on behalf",
                  " by ", "notice", "message", "alert", "override", "update", "directive", "instruction", "the user",
                  "mandatory", "required", "compulsory"),
    "task-injection": tuple(f"your {noun}" for noun in ("response", "answer", "repl", "summar", "completion",
                                                         "message", "output", "elucidation", "explanation")) +
    ("'s response", "'s answer", "'s repl", "'s output", "' response", "' answer", " you give", " you write",
     " you produce", " you send", " you return", " you generate", "whatever you", "everything you", "anything you",
     "when you", "whenever you", "s you "),
    "answer-form": ("reply in", "reply using", "respond in", "respond using", "answer in", "answer using",
                    "write back", "reply only", "respond only", "answer only"),
    "verbatim-output": ("print", "say", "output", "repeat", "type", "respond with", "reply with", "answer with"),
    "verbatim-request": (" you ", "nothing", "only thing", "all you", "all the"),
    "code-into-answer": ("code", "snippet", "script", "excerpt", "block", "section", "solution", "fix", "patch",
                         "implementation", "program", "function", "commit", "pull request", "answer", "response"),
    "code-order": ("following", "below", "subsequent"),
    "harmful-code-order": ("following", "below", "subsequent"),
    "harmful-code": ("requests.", "socket.", ".connect((", "subprocess.", "os.", "pexpect.", "shutil.", "rm -rf",
                     "nc -e", ".encrypt", "scp", "rsync", "multiprocessing.", "send("),
    "tool-instruction": ("tool", "function", "command", "mcp", "plugin", "argument", "parameter", "input"),
}


#: Each kind of signal, its regex and weight; a body scoring THRESHOLD or more is injection. Install pages
#: pipe curl into sh and tabbed pages hide text, so those weigh little alone; an order to drop instructions,
#: or instructions hidden from the reader, weigh enough alone.
SIGNALS = {
    "override": (_compile(_OVERRIDE), 3),
    "exfiltration-request": (_compile(_EXFIL), 2),
    "exfiltration-link": (_compile(_EXFIL_LINK), 3),
    "addressed-to-agent": (_compile(_ADDRESS), 2),
    "command-bait": (_compile(_BAIT), 1),
    "authority": (_compile(_AUTHORITY), 2),
    "limits-off": (_compile(_LIMITS), 2),
    "standing-order": (_compile(_STANDING), 3),
    "prompt-request": (_compile(_PROMPT_REQUEST), 3),
    "tool-instruction": (_compile(_TOOL), 1),
    "task-injection": (_compile(_TASK), 3),
    "answer-form": (_compile(_ANSWER_FORM), 3),
    "code-order": (_compile(_CODE_ORDER), 1),
    "harmful-code-order": (_compile(tuple(order + r"[\s\S]{0,600}?(?:" + "|".join(_HARMFUL_CODE) + ")"
                                          for order in _CODE_ORDER)), 3),
    "verbatim-output": (_compile(_VERBATIM), 1),
    "verbatim-request": (_compile(_VERBATIM_REQUEST), 3),
    "code-into-answer": (_compile(_CODE_ORDER_WORK), 3),
    "harmful-code": (_compile(_HARMFUL_CODE), 1),
    # What an instruction asks an agent with tools to do (response_acts): hand the user's things over, put its task
    # off, act without asking, a voice the page does not have, a change to the user's account.
    **{name: (_compile(patterns), weight) for name, (patterns, weight, _, _) in ACTS.items()},
}
HINTS.update({name: hints for name, (_, _, hints, _) in ACTS.items()})
MARKUP = _compile(_MARKUP)
WEIGHTS = {"chat-markup": 1, "hidden-instructions": 3, "tag-characters": 3, "invisible-characters": 1,
           "encoded-instructions": 3, "unrelated-request": 3, "assembled-link": 3,
           **{name: weight for name, (_, weight) in SIGNALS.items()}}


@dataclass(frozen=True)
class Verdict:
    """The signals found in a body, their total weight, and the body with its instructions taken out.

    ``cleaned`` is the body with each instruction-bearing span replaced by
    :data:`MARK` when the rest is ordinary content (the agent may read it);
    None when there is nothing to take out, or when the body is mostly
    instructions or still reads as injection without them (then it is withheld whole).
    """

    signals: tuple[str, ...]
    score: int
    cleaned: bytes | None = None
    removed: int = 0  # how many spans were taken out

    @property
    def injection(self) -> bool:
        return self.score >= THRESHOLD

    def rule(self) -> str:
        return "response-injection"

    def reason(self) -> str:
        return "prompt injection suspected in the response (" + ", ".join(self.signals) + ")"

    def removal(self) -> str:
        """What was taken out, for the record (never the text itself)."""
        return f"{self.rule()}: {self.removed} instruction span(s) removed ({', '.join(self.signals)})"


def normalise(text: str) -> str:
    """Text as a model reads it: NFKC, invisible characters gone, look-alikes folded, lower case, spacing tamed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text).translate(_LOOKALIKES).lower()
    text = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), text)
    return re.sub(r"[ \t\r\f\v]+", " ", text)


def visible_text(markup: str) -> str:
    """Markup with tags (and script/style) removed and entities resolved."""
    return html.unescape(_TAG_STRIP.sub(lambda m: "\n" if _BLOCK_TAG.match(m.group()) else " ", markup))


def _instructions(text: str) -> bool:
    """Hidden text that speaks to the agent (commands alone do not count: tabbed install pages hide those)."""
    return any(SIGNALS[name][0].search(text) for name in ("override", "exfiltration-request", "exfiltration-link",
                                                         "addressed-to-agent", "hand-over", "handed-over",
                                                         "task-deferral",
                                                         "voice"))


def _json_text(raw: str) -> str:
    """A JSON body's strings, escapes resolved, one per line (a model reads them so); the body itself if not JSON."""
    import json

    def leaves(obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for value in obj.values():
                yield from leaves(value)
        elif isinstance(obj, list):
            for item in obj:
                yield from leaves(item)

    try:
        return "\n".join(leaves(json.loads(raw)))
    except (ValueError, RecursionError):
        return raw


def read_as_text(content_type: str) -> bool:
    """Whether a body of this type is read for injection (text of some kind, or a type not given)."""
    return not content_type or any(kind in content_type.lower() for kind in TEXT_TYPES)


def _whole(raw: str, content_type: str, ignore: frozenset[str] = frozenset()) -> dict[str, int]:
    """The signals in a whole body (its text as the agent reads it) and their weights, less those ``ignore`` names."""
    signals = _whole_signals(raw, content_type)
    return {name: weight for name, weight in signals.items() if name not in ignore} if ignore else signals


def _whole_signals(raw: str, content_type: str) -> dict[str, int]:
    signals: dict[str, int] = {}
    tags = [run for run in _TAGS.findall(_TAG_FLAG.sub("", raw)) if len(run) >= 4]
    if tags:
        signals["tag-characters"] = WEIGHTS["tag-characters"]
        raw += "\n" + "".join(chr(ord(c) - 0xE0000) for run in tags for c in run)
    invisible = len(_INVISIBLE.findall(raw))
    if invisible >= 8 and invisible * 50 >= len(raw.strip()) or re.search("[\u202a-\u202e\u2066-\u2069]", raw):
        signals["invisible-characters"] = WEIGHTS["invisible-characters"]

    hidden = [m.group("inner") for m in HIDDEN.finditer(raw)] + _COMMENT.findall(raw)
    hidden += _HIDDEN_ATTR.findall(raw)
    if hidden and any(_instructions(normalise(visible_text(part))) for part in hidden):
        signals["hidden-instructions"] = WEIGHTS["hidden-instructions"]

    if raw.lstrip()[:1] in ("{", "[") or "json" in content_type.lower():
        raw = _json_text(raw)
    looks_like_markup = "<" in raw[:2048] and ">" in raw[:2048] and content_type != PROSE_OF_CODE
    visible = (visible_text(raw) if looks_like_markup else html.unescape(raw)).replace("\\n", "\n")
    text = normalise(visible).replace('\\"', '"')
    signals.update(_signals(text))
    if sum(signals.values()) < THRESHOLD and unrelated_requests(visible, text):
        signals["unrelated-request"] = WEIGHTS["unrelated-request"]
    if MARKUP.search(text if "<" not in raw else normalise(raw)):
        signals["chat-markup"] = WEIGHTS["chat-markup"]
    return signals


def _signals(text: str) -> dict[str, int]:
    """The SIGNALS found in normalised ``text`` (and in its leet-speak reading)."""
    # A hint may start with a blank: the text's first word, and each line's, counts too.
    views = [" " + text.replace("\n", " \n ")]
    if _LEETISH.search(text):
        views.append(" " + text.translate(_LEET))
    found = {name: weight for name, (regex, weight) in SIGNALS.items()
             if any(any(map(view.__contains__, HINTS[name])) and _search(name, regex, view) for view in views)}
    if '","' in text and assembled_link(text):
        found["assembled-link"] = WEIGHTS["assembled-link"]
    return found


#: A run of short quoted pieces, comma after comma ('"![t","](htt","ps",":/"'): text handed over in parts to be
#: joined.
_PIECES = re.compile(r'(?:"[^"\n]{0,24}"\s*,\s*){3,}"?[^"\n]{0,24}"?')
#: What the joined pieces must hold for the join to be the point: an address.
_JOINED_LINK = re.compile(r"(?:https?|ftp)://[^\s)\]]+|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/[^\s)\]]*[?=]")


def assembled_link(text: str) -> bool:
    """An address cut into quoted pieces that no piece holds whole: a page asking its
    reader to put a link together from parts, so that no filter sees it. (A list of whole URLs is no such thing.)"""
    for run in _PIECES.finditer(text):
        pieces = re.findall(r'"([^"\n]*)"', run.group())
        link = _JOINED_LINK.search("".join(pieces))
        if link and not any(link.group() in piece for piece in pieces):
            return True
    return False


#: Signals every match of which ends within this many characters after one of its hints and starts at most
#: ``reach`` characters before it: in a long text their regex reads only the windows around the hints.
WINDOWED_SIGNALS = {"task-injection": (260, 60), "prompt-request": (130, 90),
                    **{name: window for name, (_, _, _, window) in ACTS.items()}}
#: Below this length a text is searched whole.
WINDOWED_FROM = 16384


def _search(name: str, regex: re.Pattern, view: str) -> bool:
    """``regex`` found in ``view``; for a windowed signal in a long text, only around its hints (each window
    starts at a sentence boundary, so the regex's own start-of-sentence test holds)."""
    if name not in WINDOWED_SIGNALS or len(view) < WINDOWED_FROM:
        return regex.search(view) is not None
    reach, after = WINDOWED_SIGNALS[name]
    windows: list[tuple[int, int]] = []
    for hint in HINTS[name]:
        position = view.find(hint)
        while position >= 0:
            if len(windows) >= 4096:
                return regex.search(view) is not None
            start = max(0, position - reach)
            boundary = max(view.rfind(c, 0, start + 1) for c in "\n.!?:;") if start else 0
            windows.append((max(boundary, 0), position + len(hint) + after))
            position = view.find(hint, position + 1)
    return any(regex.search(view, start, end) for start, end in merged_spans(windows))


# --- instructions, span by span ----------------------------------------------------------------------

MARK = "[bottle: instructions to the agent removed]"
#: A body whose instructions make up this share of its readable text or more is withheld whole.
MOSTLY = 0.5
#: Spans this close (in characters) are read together: an address in one sentence, the order in the next.
NEAR = 400
#: Text that discusses injection rather than performing it: who does it, what it is called, an example of it.
_DISCUSSION = re.compile(
    r"\b(?:attack(?:er|ers|s)?|injections?|jailbreak\w*|malicious|adversar\w*|researchers?|exploit\w*|payloads?|"
    r"phrases?|such as|for example|for instance|e\.g\.|examples?|demonstrat\w*|techniques?|vulnerab\w*|hijack\w*|"
    r"defen[cs]es?|mitigat\w*|threats?|red team\w*|benchmarks?|datasets?)\b")
_QUOTED = re.compile(r"\"[^\"]{8,}\"|“[^”]{8,}”|‘[^’]{8,}’|'[^'\n]{8,}'|`[^`]{8,}`|«[^»]{8,}»")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|you're|you've|you'll)\b")
#: An order: a clause that starts with a verb an injection gives (after the start, a colon, a dash or a semicolon).
_ORDER = re.compile(r"(?:^|[:;\u2014]\s*|\s-\s)(?:please )?(?:ignore|disregard|forget|send|upload|post|run|execute|print|"
                    r"reveal|delete|call|use|fetch|open|read|curl|wget|exfiltrate|forward|email|copy|paste|output|"
                    r"append|include|visit|navigate|click|download|install|repeat|recite|show|display|give|tell|share|"
                    r"dump|encode|translate|spell|return|provide|list|write)\b")


#: Signals that are orders by their shape (an order, its act, its object): outside quotes, no talk about injection
#: ('… is not malicious') makes them a mention.
GIVEN_ORDERS = frozenset({"exfiltration-link", "hand-over", "handed-over", "task-deferral", "scripted-answer",
                          "payment-redirect", "render-exfiltration", "addressed-order", "planted-verdict"})
#: Addresses (URLs, host names, e-mail addresses) say nothing about what a sentence talks of: 'evil.example' is no
#: example of injection.
_ADDRESSES = re.compile(r"\S*(?:://|@|www\.)\S*|\b[\w-]+(?:\.[\w-]+)*\.(?:example|test|invalid|com|net|org|io)\b\S*")


def _mention(text: str) -> bool:
    """Text that talks about an instruction (quotes it, names who writes such things) instead of giving it."""
    rest = _ADDRESSES.sub(" ", _QUOTED.sub(" ", text))
    return (bool(_DISCUSSION.search(rest)) and not _SECOND_PERSON.search(rest) and not _ORDER.search(rest.strip())
            and not GIVEN_ORDERS.intersection(_signals(rest)))


def _span_signals(text: str, hidden: bool) -> dict[str, int]:
    """What one span asks of the agent. Hidden from a reader, an address or an order weighs as instructions."""
    found = _signals(normalise(text))
    if MARKUP.search(normalise(text)):
        found["chat-markup"] = WEIGHTS["chat-markup"]
    if hidden and found and _instructions(normalise(text)):
        found["hidden-instructions"] = WEIGHTS["hidden-instructions"]
    return found


def _encoded_spans(raw: str) -> Iterator[Span]:
    """Base64 runs, and runs of hex, escapes or character codes, that decode to readable text: read like any other
    span (an instruction can be encoded)."""
    count = 0
    for match in _ENCODED_TEXT.finditer(raw):
        if count >= 2000:
            return
        count += 1
        decoded = _b64(match.group().encode())
        if decoded and len(decoded) >= 16 and texty(decoded) and b" " in decoded:
            yield Span(match.start(), match.end(), decoded.decode("utf-8", "replace"), True, -count)
    for match in _other_encoded(raw):
        if count >= 4000:
            return
        count += 1
        decoded = _decoded(match.group())
        if decoded and len(decoded) >= 16:
            yield Span(match.start(), match.end(), decoded.decode("utf-8", "replace"), True, -count)


_ENCODED_TEXT = re.compile(r"[A-Za-z0-9+/_\-]{24,}={0,2}")
#: Text in other encodings a model reads through: hex, octal escapes and quoted-printable, lists of character codes.
#: Each run is decoded by the request side's decoders (``text_forms``) and read like a base64 run. (Three searches,
#: each starting only where its own kind of run can: one alternation would be tried at every character.)
_OTHER_ENCODED = (re.compile(r"[0-9A-Fa-f]{32,}"), re.compile(r"(?:\\[0-3][0-7]{2}|=[0-9A-F]{2}){8,}"),
                  re.compile(r"\d{2,3}(?:[^\d\n]{1,8}?\d{2,3}){15,}"))


def _decoded(run: str) -> bytes | None:
    """A run of hex, escapes or character codes as the text it stands for (None: no such run, or no text)."""
    data = run.encode()
    if re.fullmatch(r"[0-9A-Fa-f]+", run):
        decoded = bytes.fromhex(run[:len(run) // 2 * 2])
    else:
        decoded = escapes(data) or char_codes(data)
    return decoded if decoded and decoded != data and texty(decoded) and b" " in decoded else None


def _other_encoded(raw: str) -> list[re.Match]:
    """The runs of hex, escapes and character codes in ``raw``, in order."""
    return sorted((m for regex in _OTHER_ENCODED for m in regex.finditer(raw)), key=lambda m: m.start())


#: Verbs that ask for a piece of work (what an assistant is asked to do), in the base form.
_TASK_VERBS = (r"(?:show|tell|give|help|suggest|recommend|explain|describe|summari[sz]e|provide|list|write|draft|"
               r"compose|create|generate|develop|translate|determine|classify|identify|analy[sz]e|compare|calculate|"
               r"find|name|define|outline|predict|evaluate|plan|design|propose|rewrite|convert|replace|remove|"
               r"introduce|misspell|scramble|jumble|anagram|group|combine|shift|reverse|encode|decode|spell|teach|"
               r"recount|narrate|share|offer|detail|elaborate|discuss|review|rate|rank|estimate|forecast|research|"
               r"investigate|illustrate|demonstrate|clarify|interpret|paraphrase|answer|solve|compute|count|sort|"
               r"convince|persuade|advise|guide|instruct|book|order|schedule|buy|search|look up|enhance|"
               r"improve|fix|complete|extend|refactor|optimi[sz]e|debug)")
#: Question words opening a question in the languages of published injection sets (German, French, Spanish,
#: Italian, Portuguese): a question put in another language is put to the reader as much as one in English.
#: (German 'was' only before a verb: 'Was this helpful?' is English.)
_QUESTION_WORDS = (r"(?:what|what's|who|how|which|why|where|was (?:ist|sind|war|kann|soll)|wer|wie|warum|weshalb|"
                   r"welche[rsnm]?|qu'est-ce|quel(?:le)?s?|comment|pourquoi|combien|qué|cuál(?:es)?|cómo|dónde|"
                   r"quién(?:es)?|cuándo|cuánto|perché|quale|dove|quanto|qual|onde|quem|quando)")
#: A question about what 'we' do is the author's own (a heading's 'What are we doing here?'), not put to the reader.
_OUR_QUESTION = r"(?![^?\n]*\b(?:are|were|do|did|can|could|should|shall|will|would|have|must) we\b)"
#: A request for a task put to whoever reads: a sentence opened by such a verb (or 'can you …' and one), or a
#: question to the reader.
#: What a request may open with before its verb: a softener; before a question put to the reader ('can you …', 'what
#: …?'), also a word that joins it to what came before ('By the way,', 'One more thing:', 'P.S.'). (An order after
#: 'Also,' is an install guide's next step as often as not.)
_JOINED = (r"(?:(?:also|additionally|besides|moreover|furthermore|oh|btw|by the way|one more thing|p\.?s\.?|lastly|"
           r"and)[,:.]?\s+)*")
_REQUEST_OPENER = (r"(?:please |kindly |now |also |" + _JOINED + r"(?:can|could|would|will) you (?:please )?)?")
_REQUEST = re.compile(r"\s*" + _REQUEST_OPENER + _TASK_VERBS +
                      r"\b[^\n]{10,}[.?!]\W*$|\s*" + _JOINED + r"¿?" + _OUR_QUESTION + _QUESTION_WORDS +
                      r"\b[^?\n]{8,}\?\W*$")
#: A cheap test on the raw body before it is cut into spans: a task verb or a question word opening a sentence.
_REQUEST_HINT = re.compile(r"(?:^|[\n>.!?]\s*)(?:" + _REQUEST_OPENER + _TASK_VERBS + r"|" + _JOINED + r"¿?" +
                           _QUESTION_WORDS + r")\b", re.I)
_CONTENT_WORD = re.compile(r"[a-z]{4,}")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_COMMON = frozenset("""this that with from have your what which about would there their will been more when into
some than them these then only also just like over such make each most other very after before were they does here
this your yours that's what's it's there's where what when please could would should shall must might thank thanks
""".split())
#: A request shares at most this share of its words with the rest of the document to count as unrelated to it.
UNRELATED = 0.25


def word_counts(text: str) -> dict[str, int]:
    """How often each content word occurs in normalised ``text`` (a plural counts as its singular)."""
    counts: dict[str, int] = {}
    for word in _CONTENT_WORD.findall(text):
        word = word.rstrip("s")
        counts[word] = counts.get(word, 0) + 1
    return counts


def off_topic(sentence: str, counts: dict[str, int]) -> bool:
    """A request (normalised) whose words the rest of the document (``counts``, the whole) hardly ever uses."""
    mine = {word: n for word, n in word_counts(sentence).items() if word not in _COMMON}
    if len(mine) < (2 if sentence.rstrip().endswith("?") else 3):
        return False
    shared = sum(counts.get(word, 0) > n for word, n in mine.items())
    return shared <= UNRELATED * len(mine)


def unrelated_requests(visible: str, text: str) -> list[str]:
    """Requests for a task the document itself is not about: an e-mail, a table or a page that asks its
    reader for something its other text never mentions ('What movies are playing this weekend?' after an
    invoice) is addressed to an assistant reading it, not to its human recipient.

    :param visible: the text as a reader sees it (a request opens a sentence with a capital: a wrapped
        line that goes on with 'name given to…' is not one);
    :param text: the same, normalised (what the words are counted in).
    """
    requests = [normalise(sentence) for line in visible.split("\n") if _REQUEST_HINT.search(line)
                for sentence in _SENTENCES.split(line.strip()) if _opens_request(sentence)]
    if not requests:
        return []
    counts = word_counts(text)
    return [sentence for sentence in requests if off_topic(sentence, counts)]


def _opens_request(sentence: str) -> bool:
    """A sentence, as written, that opens with a capital and reads as a request."""
    return sentence.lstrip("¿")[:1].isupper() and bool(_REQUEST.match(normalise(sentence)))


def _instruction_spans(raw: str, content_type: str, ignore: frozenset[str] = frozenset(),
                       pieces: list[Span] | None = None) -> tuple[list[tuple[Span, dict[str, int]]], list[Span]]:
    """The spans that carry instructions (with their signals, less those ``ignore`` names), and the spans that
    only discuss them. ``pieces``: the body's spans when the caller cut it (a program's comments and strings)."""
    scored, mentions = [], []
    counts = None
    everything = [*(spans(raw, content_type) if pieces is None else pieces), *_encoded_spans(raw)]
    for span in everything:
        found = {k: w for k, w in _span_signals(span.text, span.hidden).items() if k not in ignore}
        if ("unrelated-request" not in ignore and _REQUEST_HINT.match(span.text.lstrip()[:40])
                and _opens_request(span.text.lstrip())):
            text = normalise(span.text)
            if counts is None:
                markup = looks_like_markup(raw) and content_type != PROSE_OF_CODE
                counts = word_counts(normalise(visible_text(raw) if markup else raw))
            if off_topic(text, counts):
                found["unrelated-request"] = WEIGHTS["unrelated-request"]
        if span.block < 0 and sum(found.values()) >= THRESHOLD:
            found["encoded-instructions"] = WEIGHTS["encoded-instructions"]
        if not found:
            continue
        if _mention(normalise(span.text)) and span.block >= 0:
            mentions.append(span)
        else:
            scored.append((span, found))
    scored.sort(key=lambda item: item[0].start)
    taken: list[tuple[Span, dict[str, int]]] = []
    group: list[tuple[Span, dict[str, int]]] = []
    for item in [*scored, None]:
        if item is not None and group and item[0].start - group[-1][0].end <= NEAR:
            group.append(item)
            continue
        if group and sum({k: w for _, found in group for k, w in found.items()}.values()) >= THRESHOLD:
            taken += group
        group = [item] if item is not None else []
    if taken:
        taken += _carried(everything, taken, mentions)
        taken.sort(key=lambda item: item[0].start)
    return taken, mentions


#: A sentence that gives an order: opened (past a softener, 'do', 'then') by a verb in the base form.
_AN_ORDER = re.compile(r"[\W_]*(?:(?:please|then|and|now|first|also|next|finally|do|just|kindly),?\s+)*" + ORDER_WORD)
#: How many spans an instruction's frame may hold between its opening and its close ('<INFORMATION> … first:', the
#: order, 'After you do that, …').
FRAMED = 3


def _carried(everything: list[Span], taken: list[tuple[Span, dict[str, int]]],
             mentions: list[Span]) -> list[tuple[Span, dict[str, int]]]:
    """The spans an instruction taken out carries with it: those framed by two spans taken out (the order between an
    address and its sign-off), and an order right after one taken out, in the same paragraph ('Ignore your previous
    instructions. Do … instead.')."""
    ends = {id(span) for span, _ in taken}
    order = sorted((s for s in everything if s.block >= 0), key=lambda s: s.start)
    skip = {id(s) for s in mentions}
    carried: list[tuple[Span, dict[str, int]]] = []
    for index, span in enumerate(order):
        if id(span) in ends or id(span) in skip:
            continue
        before = next((order[i] for i in range(index - 1, max(index - FRAMED - 1, -1), -1) if id(order[i]) in ends),
                      None)
        if before is None or span.start - before.end > NEAR:
            continue
        after = next((order[i] for i in range(index + 1, min(index + FRAMED + 1, len(order))) if id(order[i]) in ends),
                     None)
        follows = (index > 0 and order[index - 1] is before and before.block == span.block
                   and _AN_ORDER.match(normalise(span.text)))
        if follows or (after is not None and after.start - span.end <= NEAR):
            carried.append((span, {}))
    return carried


def _rewrite(raw: str, replace: list[tuple[int, int, str]]) -> str:
    out, position = [], 0
    for start, end, text in sorted(replace):
        if start < position:
            continue  # inside a span already replaced
        out += [raw[position:start], text]
        position = end
    return "".join(out + [raw[position:]])


#: What code does rather than says: counted in prose, not in a program's own code (see ``response_code``).
CODE_SIGNALS = frozenset({"harmful-code", "harmful-code-order", "command-bait", "tool-instruction", "code-order",
                          "verbatim-output", "chat-markup"})
#: In a program's strings and comments, code is still code (a command line in a string, an address to connect
#: to), and a docstring says in the imperative what its function does ("Return the path.", "Write the log.": PEP
#: 257's own advice), which is no request to the reader: what counts there is what is said to the reader.
PROGRAM_DATA = frozenset({"harmful-code", "unrelated-request"})
#: The content type a program's prose (and code) is read as: text whose '<' and '>' are operators, not tags.
PROSE_OF_CODE = "text/x-prose-of-code"


def _compact(text: str) -> str:
    """``text`` without its blank lines, each line stripped."""
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


def _as_code(raw: str, content_type: str, path: str) -> tuple[str, list[Span]] | None:
    """The prose of ``raw`` (comments, strings, docstrings; offsets kept) and its spans (sentence by sentence,
    each within one comment or string) when ``raw`` is source code whose code does not itself read as
    instructions; None otherwise (then the body is read as text)."""
    code = split_code(raw, content_type, path) if read_as_text(content_type) else None
    if code is None:
        return None
    # Code that parsed as Python is code; code only said to be (a type, an extension) must not read as prose.
    if not code.parsed and sum(_whole(code.code, PROSE_OF_CODE, CODE_SIGNALS).values()) >= THRESHOLD:
        return None
    pieces = [span for block, (start, end) in enumerate(code.regions)
              for span in sentences(raw[start:end], start, block, False, str)]
    return code.prose, pieces


def find_injection(body: bytes, content_type: str = "", path: str = "") -> Verdict:
    """Read ``body`` for text aimed at the agent: what was found, its weight, and the body without the instructions.

    Each span a model reads (a sentence, a comment, an attribute, a JSON
    string, a base64 run of text) is scored by what it does: addresses the
    agent, orders it to drop its instructions, asks for a tool, a command or
    a credential, claims an authority. Spans that only discuss injection (an
    article quoting an example) are left alone. Source code (by its content
    type, the extension of ``path``, the URL's path, or a parse) is read as
    code: only its comments, strings and docstrings can instruct.
    """
    if not read_as_text(content_type):
        return Verdict((), 0)
    head, tail = body[:MAX_INJECTION_SCAN], body[MAX_INJECTION_SCAN:]
    source = head.decode("utf-8", "replace")
    code = _as_code(source, content_type, path)
    raw, content_type, pieces = (source, content_type, None) if code is None else (code[0], PROSE_OF_CODE, code[1])
    ignore = PROGRAM_DATA if code is not None else frozenset()

    def judge(text: str) -> dict[str, int]:
        # A program's prose is read without the blank lines its code left (same signals, a fraction of the work).
        return _whole(_compact(text) if code is not None else text, content_type, ignore)

    whole = judge(raw)
    encoded = [s for s in _encoded_spans(raw) if sum(_span_signals(s.text, True).values()) >= THRESHOLD] \
        if _ENCODED_TEXT.search(raw) or any(regex.search(raw) for regex in _OTHER_ENCODED) else []
    if sum(whole.values()) < THRESHOLD and not encoded:
        return Verdict(tuple(whole), sum(whole.values()))  # no span can score more than the whole body
    taken, mentions = _instruction_spans(raw, content_type, ignore, pieces)
    blank = [(s.start, s.end, " " * (s.end - s.start)) for s in mentions]
    if mentions:
        whole = judge(_rewrite(raw, blank))
    signals = dict(whole)
    for _, found in taken:
        signals.update(found)
    score = max(sum(whole.values()), max((sum(f.values()) for _, f in taken), default=0))
    if not taken:
        return Verdict(tuple(signals), sum(whole.values()))
    marks = [(s.start, s.end, MARK) for s, _ in taken]
    cleaned = _rewrite(source, marks)  # a code body's prose has the code's offsets: the program stays whole
    residual = judge(_rewrite(raw, [(s.start, s.end, " ") for s, _ in taken] + blank))
    readable = len(_compact(raw) if code is not None else visible_text(raw).strip()) or 1
    removed = sum(len(s.text) for s, _ in taken)
    if sum(residual.values()) >= THRESHOLD or removed >= MOSTLY * readable:
        return Verdict(tuple(signals), max(score, THRESHOLD))
    return Verdict(tuple(signals), max(score, THRESHOLD), cleaned.encode("utf-8") + tail, len(taken))
