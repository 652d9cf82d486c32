"""Supervision on the host: the manifest's rules, Claude Code's managed settings, the summary, the hook client."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from bottle_core.agent import image_context
from bottle_core.errors import ManifestError
from bottle_core.manifest import Manifest
from bottle_core.plan import SupervisePlan
from bottle_core.supervise import HOOK_COMMAND, HOOK_EVENTS, managed_settings, summary

HOOK_CLIENT = image_context() / "bottle-hook"


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
    assert handler["command"] == f"{HOOK_COMMAND} http://10.1.2.2:9090 PreToolUse 45"
    assert handler["timeout"] > 45, "Claude Code must not give up before the client has its answer"


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


class Answering(http.server.BaseHTTPRequestHandler):
    answer = b"allow\n"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def supervisor_answering():
    server = http.server.HTTPServer(("127.0.0.1", 0), Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def hook(url: str, event: str = "PreToolUse") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(HOOK_CLIENT), url, event, "5"], input=b'{"tool_name": "Bash"}',
                          capture_output=True, timeout=30)


@pytest.mark.parametrize("answer, code, says", [
    (b"allow\n", 0, ""),
    (b"deny\nbottle supervisor: Bash call denied by rule Bash(rm -rf:*)\n", 2, "denied by rule Bash(rm -rf:*)"),
    (b"<html>a captive portal</html>", 2, "was not understood"),
    (b"", 2, "was not understood"),
])
def test_the_hook_client_relays_the_answer_and_fails_closed(supervisor_answering, answer, code, says):
    Answering.answer = answer
    result = hook(f"http://127.0.0.1:{supervisor_answering.server_port}")
    assert result.returncode == code
    assert says in result.stderr.decode()


def test_the_hook_client_refuses_a_call_when_the_supervisor_is_unreachable():
    result = hook("http://127.0.0.1:9")
    assert result.returncode == 2 and "could not be reached" in result.stderr.decode()
    # An event that cannot be undone gets a non-blocking error instead (a blocked Stop would never stop).
    assert hook("http://127.0.0.1:9", "Stop").returncode == 1
