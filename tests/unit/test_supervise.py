"""Supervision on the host: the manifest's rules, Claude Code's managed settings, the summary, the hook client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bottle_core.errors import ManifestError
from bottle_core.manifest import Manifest
from bottle_core.plan import SupervisePlan
from bottle_core.supervise import HOOK_EVENTS, managed_settings, summary


def manifest_with(supervise: dict) -> Manifest:
    return Manifest.from_json_obj({"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev", "supervise": supervise}}})


def test_a_bad_rule_is_a_manifest_error_naming_field_and_rule():
    with pytest.raises(ManifestError) as caught:
        manifest_with({"mode": "enforce", "deny": ["Bash(rm -rf:*)", "WebFetch(example.com)"]})
    text = caught.value.render()
    assert "agents.demo.supervise.deny[1]" in text and "'WebFetch(example.com)'" in text


def test_rules_without_supervision_are_refused_not_ignored():
    with pytest.raises(ManifestError) as caught:
        manifest_with({"mode": "off", "deny": ["Bash"]})
    assert "mode is 'off'" in caught.value.render()


def test_deny_tools_is_gone():
    with pytest.raises(ManifestError, match="deny_tools"):
        manifest_with({"mode": "enforce", "deny_tools": ["Bash"]})


class FakePlan:
    def __init__(self, state_dir: Path, mode: str = "enforce", ask_timeout: float = 30):
        self.state_dir = str(state_dir)
        self.supervise = SupervisePlan(mode=mode, ask_timeout=ask_timeout)

        class Net:
            bundle_ip = "10.1.2.2"
        self.network = Net()


def test_managed_settings_send_every_event_to_the_supervisor_and_allow_no_other_hooks(tmp_path):
    settings = managed_settings(FakePlan(tmp_path, ask_timeout=30))
    assert settings["allowManagedHooksOnly"] is True
    assert set(settings["hooks"]) == set(HOOK_EVENTS)
    [group] = settings["hooks"]["PreToolUse"]
    assert group["matcher"] == "*"
    [handler] = group["hooks"]
    assert handler == {"type": "http", "url": "http://10.1.2.2:9090/hook?event=PreToolUse", "timeout": 45,
                       "onFailure": "block"}
    assert handler["timeout"] > 30, "Claude Code must not give up before the supervisor's ask times out"
    # Every event goes to the supervisor by claude's own request, no process per event; what the supervisor
    # can refuse is refused on any failure, what cannot be undone only gets a non-blocking error.
    for event, [group] in settings["hooks"].items():
        [handler] = group["hooks"]
        if event == "SessionStart":  # Claude Code runs no http hook for it: recorded by a command once a session
            assert handler["type"] == "command" and "/hook?event=SessionStart" in handler["command"]
            continue
        assert handler["type"] == "http" and handler["url"].endswith(f"/hook?event={event}")
        assert handler["onFailure"] == ("block" if event in ("PreToolUse", "UserPromptSubmit") else "continue")


def test_summary_counts_calls_and_answers(tmp_path):
    (tmp_path / "logs").mkdir()
    records = [{"seq": 1, "event": "PreToolUse", "decision": "allow"},
               {"seq": 2, "event": "PreToolUse", "decision": "deny"},
               {"seq": 3, "event": "PreToolUse", "decision": "ask"},
               {"seq": 4, "event": "Answer", "outcome": "approved"},
               {"seq": 5, "event": "PreToolUse", "decision": "ask"},
               {"seq": 6, "event": "Answer", "outcome": "timeout"}]
    (tmp_path / "logs" / "audit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert summary(FakePlan(tmp_path)) == ("supervise: 4 tool calls (as reported by the agent's hooks, which the agent "
                                           "could forge): 1 allowed, 1 denied by policy, 2 asked "
                                           "(1 approved, 0 denied, 1 timed out)")
    assert summary(FakePlan(tmp_path, mode="off")) is None
