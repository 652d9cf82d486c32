"""A response that is source code, read as code: only what it says to a reader (comments, strings, docstrings).

A program that opens sockets, runs subprocesses or deletes trees *is* code
doing its job: it is not an instruction to the agent that reads it. What can
instruct the agent in a source file is its prose, the comments, docstrings
and string literals. :func:`split_code` tells whether a body is source code
(by its content type, by the file extension of its URL, or because it parses
as Python) and returns the body with everything but that prose blanked out,
offsets kept, so ``response_inspection`` reads and cuts it span by span as it
does any text (an instruction taken out of a comment leaves the program
intact).

A body is only read this way when its code does not itself read as
instructions (:func:`response_inspection.find_injection` checks): naming a
URL ``.py`` does not hide prose from inspection.

Standard library only. Python is recognised by :mod:`ast`, and its comments
and strings are found by a lexer of Python's own comment and string forms
(:mod:`tokenize` finds the same at ten times the cost, two seconds a
megabyte); other languages by one lexer of the comment and string forms C,
Java, JavaScript, Go, Rust, shell, Ruby and PHP share.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import NamedTuple
from posixpath import splitext
from urllib.parse import urlsplit

#: Content types that say "source code" (``text/x-python``, ``application/javascript``, ...).
_CODE_TYPE = re.compile(r"(?:^|/)(?:x-)?(?:python|python3|script\.python|javascript|ecmascript|typescript|"
                        r"c|csrc|chdr|c\+\+|c\+\+src|java|java-source|sh|shellscript|go|golang|rust|ruby|perl|php|"
                        r"lua|kotlin|scala|swift|csharp)(?:;|$)")
_PYTHON_TYPE = re.compile(r"python")
#: File extensions of source code, and which are Python.
CODE_EXTENSIONS = frozenset(".py .pyi .pyw .js .mjs .cjs .jsx .ts .tsx .c .h .cc .cpp .cxx .hh .hpp .java .kt "
                            ".kts .go .rs .rb .pl .pm .php .sh .bash .zsh .lua .swift .scala .cs .m .mm".split())
PYTHON_EXTENSIONS = frozenset((".py", ".pyi", ".pyw"))
#: Types that are something else whatever the URL says (a page is read as a page).
_NOT_CODE = ("html", "xml", "json", "markdown", "x-www-form-urlencoded")
#: A body larger than this is not parsed to find out whether it is Python (a type or an extension must say so).
MAX_PARSE = 1024 * 1024
#: A line that starts Python's statements: a body with none is not tried as Python.
_PYTHON_HINT = re.compile(r"^(?:def |class |import |from \S+ import |async def |@\w)", re.M)
#: Python's comments and string literals (a prefix such as r, b or f is left with the code).
_PYTHON_LEXER = re.compile(r"#(?P<hash>[^\n]*)|(?P<q3>\"\"\"|''')(?P<long>(?:\\.|[^\\])*?)(?P=q3)"
                           r"|(?P<q>[\"'])(?P<short>(?:\\.|[^\\\n])*?)(?P=q)", re.S)
#: Comments and string literals of the C family, shell, Ruby and PHP.
_LEXER = re.compile(r"//(?P<line>[^\n]*)|/\*(?P<block>.*?)\*/|#(?P<hash>[^\n]*)"
                    r"|(?P<q3>\"\"\"|'''|`)(?P<long>.*?)(?P=q3)|(?P<q>[\"'])(?P<short>(?:\\.|[^\\\n])*?)(?P=q)", re.S)


def language(content_type: str, path: str) -> str | None:
    """'python', 'code' (another language) or None, from the content type and the URL path's extension."""
    kind = content_type.split(";")[0].strip().lower()
    if any(word in kind for word in _NOT_CODE):
        return None
    extension = splitext(urlsplit(path).path)[1].lower() if path else ""
    if _CODE_TYPE.search(kind):
        return "python" if _PYTHON_TYPE.search(kind) or extension in PYTHON_EXTENSIONS else "code"
    if extension in CODE_EXTENSIONS:
        return "python" if extension in PYTHON_EXTENSIONS else "code"
    return None


def parses(raw: str) -> ast.Module | None:
    """``raw`` parsed as Python (None when it does not parse, or is too large to try)."""
    if len(raw) > MAX_PARSE:
        return None
    try:
        with warnings.catch_warnings():  # invalid escape sequences in old code: a warning, not a reason
            warnings.simplefilter("ignore")
            return ast.parse(raw)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def parses_as_python(raw: str) -> bool:
    """A body of Python statements: it parses, and holds a definition or an import (prose does neither)."""
    tree = parses(raw) if _PYTHON_HINT.search(raw) else None
    return tree is not None and any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
               for node in tree.body)


class Code(NamedTuple):
    """A body read as source code: its prose and its code (each as long as the body, blanks elsewhere, line breaks
    kept), where each comment and string content is, and whether the body parsed as Python (then its code is
    known to be code; otherwise it is only said to be)."""

    prose: str
    code: str
    regions: list[tuple[int, int]]
    parsed: bool


def split_code(raw: str, content_type: str = "", path: str = "") -> Code | None:
    """``raw`` read as source code (:class:`Code`) when its type, its URL's extension or a parse says it is code;
    None when it is not."""
    kind = language(content_type, path)
    if kind is None:
        main = content_type.split(";")[0].strip().lower()
        if main not in ("", "text/plain") or not parses_as_python(raw):
            return None
        kind, parsed = "python", True
    else:
        parsed = kind == "python" and parses(raw) is not None
    regions = _lexed_prose(raw, _PYTHON_LEXER if kind == "python" else _LEXER)
    return Code(*_keep(raw, regions), regions, parsed)


def _keep(raw: str, spans: list[tuple[int, int]]) -> tuple[str, str]:
    """``raw`` with only ``spans`` kept, and with only the rest kept; blanks elsewhere (line breaks stay)."""
    prose, code, position = [], [], 0
    for start, end in sorted(spans):
        if start < position:
            continue
        prose += [_blank(raw[position:start]), raw[start:end]]
        code += [raw[position:start], _blank(raw[start:end])]
        position = end
    prose.append(_blank(raw[position:]))
    code.append(raw[position:])
    return "".join(prose), "".join(code)


def _blank(text: str) -> str:
    """As many blanks as ``text`` has characters, its line breaks kept."""
    return "\n".join(" " * len(line) for line in text.split("\n"))


def _lexed_prose(raw: str, lexer: re.Pattern) -> list[tuple[int, int]]:
    """Comments and string contents by ``lexer`` (offsets into ``raw``, in order)."""
    spans = []
    for match in lexer.finditer(raw):
        group = next(name for name, text in match.groupdict().items() if text is not None and name not in ("q", "q3"))
        spans.append((match.start(group), match.end(group)))
    return spans
