"""Generate ``inspection_catalogue.py`` from gitleaks' published rule set (``config/gitleaks.toml``).

    python -m bottle_core.bundle.image.inspection_catalogue_build GITLEAKS.toml VERSION > inspection_catalogue.py

VERSION names the release and commit the file came from (``git describe``
in a gitleaks clone, say ``v8.30.0-27-gb58d3f10``); it is recorded in the
output with the source. The table is never edited by hand: to follow a
newer gitleaks, run this again on its rule file.

Go's regular expressions (RE2) are rewritten where Python's differ: a
``(?i)`` in mid-pattern becomes a scoped ``(?i:...)`` to the end of its
group, ``\\z`` becomes ``\\Z``. A rule whose expression still does not compile
is left out and named in the output.

Allow-lists are kept where they say a value carries nothing (a template,
a variable, a placeholder) or where the match is not a credential by its
context (``key_id``, ``public_key``). Allow-lists of published example
values (:data:`EXAMPLE_ALLOWLISTS`) are dropped: a request is judged by
shape, and a key shown in documentation is still a key when it leaves.
Path allow-lists do not apply to a request and are dropped too.

A rule that needs the provider's name before the value (gitleaks'
``mailchimp… = <value>``) gets a second row for the value alone when the
value carries a literal marker of its own (:func:`bare_value`): a shape is
judged by itself, whatever name, or none, stands before it.
"""

from __future__ import annotations

import re
import sys
import tomllib
import warnings

#: Rules whose allow-list is a list of published example values (or values dressed as examples): not kept.
EXAMPLE_ALLOWLISTS = frozenset({"aws-access-token", "gcp-api-key", "nuget-config-password"})


def _group_end(pattern: str, start: int) -> int:
    """Index of the ')' closing the group that contains ``start`` (or the end of the pattern)."""
    depth, i, in_class = 0, start, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":
                i += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return len(pattern)


def python_regex(go: str) -> str:
    """A Go (RE2) expression as Python ``re`` reads it: mid-pattern flags scoped, ``\\z`` as ``\\Z``, no lazy lead."""
    pattern = re.sub(r"(?<!\\)\\z", r"\\Z", go)
    # A leading lazy '[\w.-]{0,50}?' only widens a match leftwards and never decides one; Python's backtracking
    # would try it at every character of a long body, so it goes.
    pattern = re.sub(r"^(\(\?i\))?\[\\w\.-\]\{0,\d+\}\?", r"\1", pattern)
    while True:
        index = pattern.find("(?i)", 1)
        if index < 0:
            return pattern
        end = _group_end(pattern, index + 4)
        pattern = pattern[:index] + "(?i:" + pattern[index + 4:end] + ")" + pattern[end:]


#: How gitleaks writes a rule that needs the provider's name before the value ('mailchimp_key = …'): the
#: assignment before the value's group, and the end after it.
_ASSIGNED = "[\\x60'\"\\s=]{0,5}("
_ASSIGNED_END = ")(?:[\\x60'\"\\s;]|\\\\[nr]|$)"
_NOT_LITERAL = re.compile(r"\[(?:\\.|[^\]])*\]|\{[^}]*\}|\\.|\(\?[:i-]*|[()|?*+]")


def bare_value(regex: str) -> tuple[str, tuple[str, ...]] | None:
    """For a rule that needs the provider's name before the value: the value's own regex and its literal markers,
    when the value carries a marker of its own (three different characters or more) ('…-us12' is Mailchimp's whoever
    names it). None when it does not, or when the marker is optional."""
    if _ASSIGNED not in regex or not regex.endswith(_ASSIGNED_END):
        return None
    value = regex[regex.index(_ASSIGNED) + len(_ASSIGNED):-len(_ASSIGNED_END)]
    if ")?" in value or "|\\b" in value or "$)" in value:
        return None
    markers = tuple(word.lower() for word in _NOT_LITERAL.sub(" ", value).split() if len(set(word)) >= 3)
    if not markers:
        return None
    # Alone, it must start a token: a marker like 'live_' is also the tail of other providers' prefixes
    # ('shippo_live_…'), and a long base64 text holds every short marker somewhere.
    lead = "(?<![A-Za-z0-9_\\-])"
    flags = "(?i)" if regex.startswith("(?i)") else ""  # the value was read under the rule's flag
    return flags + lead + "(" + value + ")", markers


def _compiles(pattern: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            re.compile(pattern)
            return True
        except re.error:
            return False


def build(config: dict, version: str) -> str:
    """The text of ``inspection_catalogue.py`` for a parsed gitleaks config."""
    rows, skipped = [], []
    for rule in config.get("rules", []):
        if "regex" not in rule:
            skipped.append((rule["id"], "no regex (a path rule)"))
            continue
        regex = python_regex(rule["regex"])
        if not _compiles(regex):
            skipped.append((rule["id"], "does not compile in Python"))
            continue
        allow_secret, allow_match, allow_line, stopwords = [], [], [], []
        for allow in rule.get("allowlists", []):
            if rule["id"] in EXAMPLE_ALLOWLISTS or allow.get("paths") or allow.get("condition") == "AND":
                continue
            target = {"match": allow_match, "line": allow_line}.get(allow.get("regexTarget", ""), allow_secret)
            target += [python_regex(r) for r in allow.get("regexes", []) if _compiles(python_regex(r))]
            stopwords += allow.get("stopwords", [])
        allows = (tuple(allow_secret), tuple(allow_match), tuple(allow_line), tuple(sorted(set(stopwords))))
        rows.append((rule["id"], regex, tuple(k.lower() for k in rule.get("keywords", [])),
                     int(rule.get("secretGroup", 0)), float(rule.get("entropy", 0.0)), *allows))
        bare = bare_value(regex)
        if bare and _compiles(bare[0]):
            rows.append((rule["id"], bare[0], bare[1], 1, float(rule.get("entropy", 0.0)), *allows))
    glob = config.get("allowlist", {})
    out = [
        '"""Credential rules as data: generated from gitleaks\' published rule set by inspection_catalogue_build.py.',
        "",
        "Do not edit by hand; regenerate from a newer rule file instead.",
        '"""',
        "",
        "# fmt: off",
        'SOURCE = "https://github.com/gitleaks/gitleaks config/gitleaks.toml"',
        f"VERSION = {version!r}",
        'LICENCE = "MIT (Copyright (c) 2019 Zachary Rice)"',
        "#: Left out, and why.",
        f"SKIPPED = {tuple(skipped)!r}",
        "#: Values that carry nothing (templates, variables, one repeated letter), whatever the rule.",
        f"GLOBAL_ALLOW = {tuple(r for r in map(python_regex, glob.get('regexes', [])) if _compiles(r))!r}",
        f"GLOBAL_STOPWORDS = {tuple(glob.get('stopwords', []))!r}",
        "#: (id, regex, keywords, secret group, entropy floor, allow (secret), allow (match), allow (line), stopwords)",
        "RULES = (",
    ]
    out += [f"    {row!r}," for row in rows]
    out += [")", ""]
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bottle_core.bundle.image.inspection_catalogue_build GITLEAKS.toml VERSION")
    path, version = sys.argv[1], sys.argv[2]
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        sys.exit(f"{path}: not a readable gitleaks rule file ({error}); pass config/gitleaks.toml of a gitleaks clone")
    sys.stdout.write(build(config, version))


if __name__ == "__main__":
    main()
