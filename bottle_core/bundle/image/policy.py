"""Claude Code permission rules, parsed and matched: the supervisor's policy.

Standard library only: the supervisor imports it inside the bundle, and
``bottle validate`` imports it on the host (as ``bottle_core.bundle.image.policy``)
so a rule that does not parse is refused before anything starts.

A rule is a tool name, or a tool name with a specifier in parentheses, in
Claude Code's own syntax:

* ``Bash`` -- every Bash call; ``Bash(npm test)`` -- exactly that command;
  ``Bash(git push:*)`` -- commands starting with ``git push``; ``*`` in a
  specifier matches anything (``Bash(git * main)``).
* ``Read(./secrets/**)``, ``Edit(/src/**)``, ``Write(~/.ssh/*)``,
  ``Read(//etc/passwd)`` -- gitignore-style path patterns: ``//`` starts an
  absolute path, ``~/`` the agent's home, ``/`` the workspace, and anything
  else the session's working folder; a pattern without a slash
  (``Read(*.env)``) matches at any depth. ``Read`` covers the tools that read
  files (Read, Grep, Glob, NotebookRead), ``Edit`` those that change them
  (Edit, MultiEdit, Write, NotebookEdit).
* ``WebFetch(domain:example.com)`` (``domain:*.example.com`` for subdomains).
* ``Task(name)`` / ``Agent(name)`` -- a subagent by type; ``mcp__server`` or
  ``mcp__server__tool`` -- MCP tools.

A Bash command is split at ``;``, ``&``, ``|``, newlines and command
substitutions: a deny or ask rule matching any part matches the command, an
allow rule must cover every part. Matching is textual, as in Claude Code: an
allowed interpreter can still run anything, so a strict policy sets
``default = "deny"`` or ``"ask"`` and allows what it knows.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .hosts import host_matches

DECISIONS = ("allow", "ask", "deny")
TOOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\*)?")
RULE = re.compile(r"(?P<tool>[^()\s]+)(?:\((?P<spec>.*)\))?", re.S)
HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")

#: The tools a ``Read(...)`` or ``Edit(...)`` rule covers, and the input field holding each one's path.
READERS = {"Read": "file_path", "Grep": "path", "Glob": "path", "NotebookRead": "notebook_path"}
EDITORS = {"Edit": "file_path", "MultiEdit": "file_path", "Write": "file_path", "NotebookEdit": "notebook_path"}
FAMILIES = {"Read": READERS, "Edit": EDITORS, "Write": {"Write": "file_path"}}
#: Leading words that run the rest of the line as a command of its own.
WRAPPERS = {"env", "nohup", "time", "command", "exec", "builtin", "nice"}


class RuleError(ValueError):
    """A rule that does not parse; the message says what is wrong and how to write it."""


@dataclass(frozen=True)
class Rule:
    """One parsed permission rule."""

    text: str
    tool: str
    spec: str | None = None

    def tools(self) -> dict[str, str]:
        """The tools the rule names, with the input field a path specifier applies to."""
        return FAMILIES.get(self.tool, {self.tool: ""})

    def names_tool(self, tool: str) -> bool:
        if self.tool.startswith("mcp__"):
            own = self.tool.rstrip("*")
            return tool == self.tool or tool.startswith(own if self.tool.endswith("*") else own + "__")
        return tool in self.tools()

    def matches(self, tool: str, tool_input: dict, where: Where) -> bool:
        """Whether the rule covers this call (for Bash: any part of the command)."""
        return self._matching(tool, tool_input, where, every=False)

    def covers(self, tool: str, tool_input: dict, where: Where) -> bool:
        """Whether the rule allows this whole call (for Bash: every part of the command)."""
        return self._matching(tool, tool_input, where, every=True)

    def _matching(self, tool: str, tool_input: dict, where: Where, *, every: bool) -> bool:
        if not self.names_tool(tool):
            return False
        if self.spec is None or self.spec == "*":
            return True
        if self.tool == "Bash":
            parts = command_parts(str(tool_input.get("command", "")))
            hits = [bash_matches(self.spec, part) for part in parts]
            return bool(parts) and (all(hits) if every else any(hits))
        if self.tool in FAMILIES:
            key = self.tools()[tool]
            path = tool_input.get(key) or where.cwd
            return path_matches(self.spec, str(path), where)
        if self.tool == "WebFetch":
            host = (urlsplit(str(tool_input.get("url", ""))).hostname or "").rstrip(".").lower()
            return host_matches(self.spec.removeprefix("domain:"), host)
        if self.tool in ("Task", "Agent"):
            return str(tool_input.get("subagent_type", "")) == self.spec
        return False


@dataclass(frozen=True)
class Where:
    """Where relative paths in rules and calls start: the workspace, the session's folder, the home."""

    workspace: str = "/workspace"
    home: str = "/home/agent"
    cwd: str = "/workspace"


@dataclass(frozen=True)
class Decision:
    """What the policy says about one call, and why."""

    decision: str
    reason: str
    rule: str | None = None


@dataclass
class Policy:
    """Deny, ask and allow rules and the default; deny wins over ask over allow."""

    deny: list[Rule] = field(default_factory=list)
    ask: list[Rule] = field(default_factory=list)
    allow: list[Rule] = field(default_factory=list)
    default: str = "allow"

    @classmethod
    def from_config(cls, config: dict) -> Policy:
        """From the supervise plan's fields (lists of rule texts and ``default``)."""
        return cls(deny=[parse_rule(r) for r in config.get("deny", [])],
                   ask=[parse_rule(r) for r in config.get("ask", [])],
                   allow=[parse_rule(r) for r in config.get("allow", [])],
                   default=config.get("default", "allow"))

    def decide(self, tool: str, tool_input: dict, where: Where | None = None) -> Decision:
        where = where or Where()
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        for kind, rules in (("deny", self.deny), ("ask", self.ask)):
            for rule in rules:
                if rule.matches(tool, tool_input, where):
                    verb = "denied" if kind == "deny" else "held for approval"
                    return Decision(kind, f"{verb} by rule {rule.text} (supervise.{kind})", rule.text)
        if self._allowed(tool, tool_input, where):
            return Decision("allow", "allowed by supervise.allow", None)
        return Decision(self.default, f"no rule matched; supervise.default is {self.default}", None)

    def _allowed(self, tool: str, tool_input: dict, where: Where) -> bool:
        rules = [rule for rule in self.allow if rule.names_tool(tool)]
        if any(rule.covers(tool, tool_input, where) for rule in rules):
            return True
        if tool != "Bash" or not rules:
            return False
        # A compound command is allowed when each of its parts is allowed by some rule.
        parts = command_parts(str(tool_input.get("command", "")))
        return bool(parts) and all(any(r.spec in (None, "*") or bash_matches(r.spec, part) for r in rules)
                                   for part in parts)


def parse_rule(text: str) -> Rule:
    """Parse one rule; :class:`RuleError` says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("a rule is a tool name such as 'Bash', or a tool with a specifier such as 'Bash(git push:*)'")
    text = text.strip()
    match = RULE.fullmatch(text)
    if match is None or text.count("(") != text.count(")"):
        raise RuleError(f"{text!r} is not a permission rule: write 'Tool' or 'Tool(specifier)', e.g. 'Bash(rm -rf:*)'")
    tool, spec = match["tool"], match["spec"]
    if not TOOL_NAME.fullmatch(tool) or (tool.endswith("*") and not tool.startswith("mcp__")):
        raise RuleError(f"{text!r}: {tool!r} is not a tool name (letters, digits and '_', e.g. Bash, Read, mcp__server)")
    if spec is None:
        return Rule(text, tool)
    if not spec.strip():
        raise RuleError(f"{text!r}: empty parentheses; write {tool!r} alone for every call of the tool")
    if spec == "*":
        return Rule(text, tool, spec)
    if tool == "Bash":
        if spec.find(":*") not in (-1, len(spec) - 2):
            raise RuleError(f"{text!r}: ':*' may only end a Bash rule (a prefix), e.g. 'Bash(git push:*)'")
    elif tool in FAMILIES:
        if "\0" in spec:
            raise RuleError(f"{text!r}: a path pattern cannot hold a NUL byte")
    elif tool == "WebFetch":
        domain = spec.removeprefix("domain:")
        if not spec.startswith("domain:") or not HOST.fullmatch(domain.lower()):
            raise RuleError(f"{text!r}: WebFetch takes 'domain:HOST', e.g. 'WebFetch(domain:example.com)'")
    elif tool not in ("Task", "Agent"):
        raise RuleError(f"{text!r}: a specifier is understood only for Bash, Read, Edit, Write, WebFetch, "
                        f"Task and Agent; write {tool!r} alone to match every call of it")
    return Rule(text, tool, spec)


def parse_rules(texts: list[str]) -> list[Rule]:
    return [parse_rule(text) for text in texts]


# -- Bash ---------------------------------------------------------------------


def command_parts(command: str) -> list[str]:
    """The simple commands of a shell line: split at ; & | newlines and substitutions, outside quotes."""
    parts, current, quote, index = [], [], None, 0
    while index < len(command):
        char = command[index]
        if quote == "'":
            if char == "'":
                quote = None
            current.append(char)
        elif char == "\\" and index + 1 < len(command):
            current.append(command[index:index + 2])
            index += 1
        elif char in "\"'" and (quote is None or quote == char):
            quote = None if quote else char
            current.append(char)
        elif (quote is None and char in ";&|\n()") or char == "`" or command.startswith("$(", index):
            parts.append("".join(current))
            current = []
            index += command.startswith("$(", index)
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return [normal for normal in (_strip_wrappers(part) for part in parts) if normal]


def _strip_wrappers(part: str) -> str:
    words = part.split()
    while words and (words[0] in WRAPPERS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0])):
        words.pop(0)
    return " ".join(words)


def bash_matches(spec: str, command: str) -> bool:
    """A Bash specifier against one simple command: exact, ``prefix:*``, or ``*`` wildcards."""
    spec = " ".join(spec.split())
    if spec.endswith(":*"):
        prefix = spec[:-2]
        if "*" in prefix:
            return re.fullmatch(_wildcards(prefix) + r"(?: .*)?", command, re.S) is not None
        return command == prefix or command.startswith(prefix + " ")
    if "*" in spec:
        return re.fullmatch(_wildcards(spec), command, re.S) is not None
    return command == spec


def _wildcards(spec: str) -> str:
    return ".*".join(re.escape(piece) for piece in spec.split("*"))


# -- paths and hosts ----------------------------------------------------------


def path_matches(pattern: str, path: str, where: Where) -> bool:
    """A gitignore-style pattern against a path (the path itself or anything below a match)."""
    if pattern.startswith("//"):
        anchored = pattern[1:]
    elif pattern.startswith("~/"):
        anchored = posixpath.join(where.home, pattern[2:])
    elif pattern.startswith("/"):
        anchored = posixpath.join(where.workspace, pattern[1:])
    elif "/" not in pattern.rstrip("/"):
        anchored = posixpath.join(where.cwd, "**", pattern)
    else:
        anchored = posixpath.join(where.cwd, pattern)
    anchored = posixpath.normpath(anchored)
    if not posixpath.isabs(path):
        path = posixpath.join(where.cwd, path)
    path = posixpath.normpath(path)
    return re.fullmatch(_glob(anchored) + r"(?:/.*)?", path, re.S) is not None


def _glob(pattern: str) -> str:
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("/**/", index):
            out.append("(?:/.*)?/")
            index += 4
        elif pattern.startswith("/**", index) and index + 3 == len(pattern):
            out.append("(?:/.*)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return "".join(out)
