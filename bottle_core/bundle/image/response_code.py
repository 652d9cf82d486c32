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

Standard library only: Python is read by :mod:`tokenize` (and recognised by
:mod:`ast`); other languages by one lexer of the comment and string forms
C, Java, JavaScript, Go, Rust, shell, Ruby and PHP share.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
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
#: Comments and string literals of the C family, shell, Ruby and PHP (and Python, when tokenize gives up).
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


def parses_as_python(raw: str) -> bool:
    """A body of Python statements: it parses, and holds a definition or an import (prose does neither)."""
    if len(raw) > MAX_PARSE or not _PYTHON_HINT.search(raw):
        return False
    try:
        with warnings.catch_warnings():  # invalid escape sequences in old code: a warning, not a reason
            warnings.simplefilter("ignore")
            tree = ast.parse(raw)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
               for node in tree.body)


def split_code(raw: str, content_type: str = "", path: str = "") -> tuple[str, str, list[tuple[int, int]]] | None:
    """``raw`` as (its prose, its code, where each comment and string content is) when it is source code, else
    None: the prose is ``raw`` with all but its comments and string contents blanked, the code is the rest (each
    the same length as ``raw``, newlines kept)."""
    kind = language(content_type, path)
    if kind is None:
        main = content_type.split(";")[0].strip().lower()
        if main not in ("", "text/plain") or not parses_as_python(raw):
            return None
        kind = "python"
    spans = _python_prose(raw) if kind == "python" else None
    if spans is None:
        spans = _lexed_prose(raw)
    return (*_keep(raw, spans), sorted(spans))


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
    return re.sub(r"[^\n]", " ", text)


def _python_prose(raw: str) -> list[tuple[int, int]] | None:
    """Where Python's comments and string contents are (offsets into ``raw``); None when it does not tokenize."""
    starts = [0]
    for line in io.StringIO(raw):
        starts.append(starts[-1] + len(line))
    spans: list[tuple[int, int]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(raw).readline):
            start = starts[token.start[0] - 1] + token.start[1]
            end = starts[token.end[0] - 1] + token.end[1]
            if token.type == tokenize.COMMENT:
                spans.append((start + 1, end))
            elif token.type == tokenize.STRING:
                text = token.string
                quote = min(i for i in (text.find('"'), text.find("'")) if i >= 0)
                width = 3 if text[quote:quote + 3] in ('"""', "'''") else 1
                spans.append((start + quote + width, end - width))
            elif token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):  # Python 3.12's f-string text
                spans.append((start, end))
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        return None
    return spans


def _lexed_prose(raw: str) -> list[tuple[int, int]]:
    """Comments and string contents by the shared lexer (offsets into ``raw``)."""
    spans = []
    for match in _LEXER.finditer(raw):
        group = next(name for name in ("line", "block", "hash", "long", "short") if match.group(name) is not None)
        spans.append((match.start(group), match.end(group)))
    return spans
