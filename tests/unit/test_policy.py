"""The supervisor's policy: Claude Code permission rules parsed and matched; deny over ask over allow."""

from __future__ import annotations

import pytest

from bottle_core.bundle.image.policy import Policy, RuleError, command_parts, parse_rule


def decide(config: dict, tool: str, tool_input: dict) -> str:
    return Policy.from_config(config).decide(tool, tool_input).decision


@pytest.mark.parametrize("command, expected", [
    ("rm -rf /workspace", "deny"),
    ("cd / && rm -rf /workspace", "deny"),
    ("FOO=1 env rm -rf x", "deny"),
    ("echo $(rm -rf /)", "deny"),
    ("echo \"`rm -rf /`\"", "deny"),
    ("echo 'rm -rf /'", "allow"),  # quoted text is an argument, not a command
    ("rm -r /workspace", "allow"),
    ("rmdir -rf", "allow"),
])
def test_a_deny_rule_catches_its_command_anywhere_in_a_line(command, expected):
    assert decide({"deny": ["Bash(rm -rf:*)"]}, "Bash", {"command": command}) == expected


def test_deny_wins_over_ask_over_allow():
    config = {"deny": ["Bash(git push --force:*)"], "ask": ["Bash(git push:*)"], "allow": ["Bash"]}
    assert decide(config, "Bash", {"command": "git push --force origin main"}) == "deny"
    assert decide(config, "Bash", {"command": "git push origin main"}) == "ask"
    assert decide(config, "Bash", {"command": "git status"}) == "allow"


def test_an_allow_rule_must_cover_every_part_of_a_command():
    config = {"allow": ["Bash(echo:*)", "Bash(ls)"], "default": "deny"}
    assert decide(config, "Bash", {"command": "echo hi && ls"}) == "allow"
    assert decide(config, "Bash", {"command": "echo hi && cat /etc/passwd"}) == "deny"
    assert decide(config, "Bash", {"command": "echoes"}) == "deny"


def test_default_applies_when_nothing_matches():
    assert decide({"default": "ask"}, "WebSearch", {"query": "x"}) == "ask"
    assert decide({}, "WebSearch", {"query": "x"}) == "allow"


@pytest.mark.parametrize("rule, tool, tool_input, hit", [
    ("Read(./secrets/**)", "Read", {"file_path": "/workspace/secrets/key.pem"}, True),
    ("Read(./secrets/**)", "Grep", {"pattern": "x", "path": "/workspace/secrets"}, True),
    ("Read(./secrets/**)", "Read", {"file_path": "/workspace/x/../secrets/a"}, True),
    ("Read(./secrets/**)", "Read", {"file_path": "/workspace/src/a.py"}, False),
    ("Edit(*.env)", "Write", {"file_path": "/workspace/deep/er/.env"}, True),
    ("Edit(/src/**)", "MultiEdit", {"file_path": "/workspace/src/a.py"}, True),
    ("Write(~/.ssh/**)", "Write", {"file_path": "/home/agent/.ssh/authorized_keys"}, True),
    ("Write(~/.ssh/**)", "Edit", {"file_path": "/home/agent/.ssh/authorized_keys"}, False),
    ("Read(//etc/shadow)", "Read", {"file_path": "/etc/shadow"}, True),
    ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://example.com/a"}, True),
    ("WebFetch(domain:example.com)", "WebFetch", {"url": "https://www.example.com/a"}, False),
    ("WebFetch(domain:*.example.com)", "WebFetch", {"url": "https://www.example.com/a"}, True),
    ("Task(reviewer)", "Task", {"subagent_type": "reviewer"}, True),
    ("mcp__github", "mcp__github__create_issue", {}, True),
    ("mcp__github", "mcp__githubx__create_issue", {}, False),
    ("Bash(git * main)", "Bash", {"command": "git push origin main"}, True),
    ("Edit", "NotebookEdit", {"notebook_path": "/workspace/a.ipynb"}, True),
])
def test_rules_match_like_claude_codes(rule, tool, tool_input, hit):
    assert decide({"deny": [rule]}, tool, tool_input) == ("deny" if hit else "allow")


@pytest.mark.parametrize("text, says", [
    ("", "a rule is a tool name"),
    ("Bash(", "is not a permission rule"),
    ("Bash()", "empty parentheses"),
    ("WebFetch(example.com)", "WebFetch takes 'domain:HOST'"),
    ("Glob(**/*.py)", "a specifier is understood only for"),
    ("Bash(a:*b)", "':*' may only end"),
    ("rm -rf", "is not a permission rule"),
    ("Bash*", "is not a tool name"),
])
def test_a_rule_that_does_not_parse_says_why(text, says):
    with pytest.raises(RuleError, match=None) as caught:
        parse_rule(text)
    assert says in str(caught.value)


def test_command_parts_split_outside_quotes_only():
    assert command_parts("a 'x;y' | b; c && d || e\nf") == ["a 'x;y'", "b", "c", "d", "e", "f"]
