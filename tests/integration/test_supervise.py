"""Supervision of every tool call, rehearsed with the real claude against `--model-script`.

No model key on the host and no model host contacted: the bundle answers the
model host from the script. The test "internet" still carries a model server
answering as the model host, so a request that leaked past the script would
show up there; each test checks it saw nothing.

Every test runs on docker and on k8s (``seat``): `bottle run`, `bottle pending`,
`bottle approve` and `bottle deny` reach the bottle through its backend.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bottle_core import session
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec

from .bottles import BOTTLE, bottle_cli, bottle_of, docker_plugins, write_manifest

pytestmark = pytest.mark.integration

PROMPT = "You are the guarded agent. Be brief."
SKILL = "release-notes"
DENY = ["Bash(rm -rf:*)"]
ASK = ["Bash(touch /workspace/asked*)"]
DENIED_REASON = "denied by rule Bash(rm -rf:*) (supervise.deny)"


def bash(command: str) -> dict:
    return {"tool_use": {"name": "Bash", "input": {"command": command, "description": "step"}}}


def write_script(folder: Path, replies: list) -> Path:
    path = folder / "script.json"
    path.write_text(json.dumps(replies))
    return path


@pytest.fixture
def manifest(tmp_path: Path, outbound_env, monkeypatch, seat) -> Path:
    for key, value in {**outbound_env, "BOTTLE_BACKEND": seat}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    supervise = {"mode": "enforce", "deny": DENY, "ask": ASK}
    return write_manifest(tmp_path, {
        "bottles": {"dev": {}},
        "agents": {
            "guarded": {"bottle": "dev", "prompt": PROMPT, "skills": [SKILL],
                        "supervise": {**supervise, "ask_timeout": 120}},
            "hasty": {"bottle": "dev", "prompt": PROMPT, "skills": [SKILL],
                      "supervise": {**supervise, "ask_timeout": 2}},
        },
    }, skills={SKILL: {"SKILL.md": f"---\nname: {SKILL}\ndescription: Writes release notes.\n---\nWrite notes.\n"}})


def logs(target: str, kind: str) -> list[dict]:
    result = bottle_cli("logs", target, f"--{kind}", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def tool_results(body: dict) -> list[str]:
    """The text of every tool result in the last message of a Messages request."""
    texts = []
    for block in body["messages"][-1]["content"] if isinstance(body["messages"][-1]["content"], list) else []:
        if block.get("type") == "tool_result":
            content = block.get("content")
            texts.append(content if isinstance(content, str) else json.dumps(content))
    return texts


def model_requests(target: str) -> list[dict]:
    return [r["body"] for r in logs(target, "model") if r["method"] == "POST" and r["path"].startswith("/v1/messages")
            and not r["path"].startswith("/v1/messages/count_tokens")]


def test_rehearsal_allows_denies_and_times_out_with_every_event_logged(manifest, tmp_path, model_server):
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "keep.txt").write_text("precious\n")
    script = write_script(tmp_path, [
        bash("echo hi > /workspace/f"),
        bash("rm -rf /workspace"),
        bash("touch /workspace/asked"),
        bash("ls /workspace; cat /workspace/f"),
        "all done",
    ])
    result = bottle_cli("run", "-m", str(manifest), "--model-script", str(script), "hasty", "--", "go",
                        "--output-format", "text", cwd=workspace)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert result.stdout.decode().strip() == "all done"
    assert "warning" not in stderr, "a rehearsal needs no model key"
    assert ("bottle: supervise: 4 tool calls (as reported by the agent's hooks, which the agent could forge): "
            "2 allowed, 1 denied by policy, 1 asked (0 approved, 0 denied, 1 timed out)") in stderr

    requests = model_requests("hasty")
    assert len(requests) == 5
    # The model's next request carries the denial, and the time-out, as the tool's result.
    assert DENIED_REASON in tool_results(requests[2])[0]
    assert "no answer within 2 s" in tool_results(requests[3])[0]
    listing = tool_results(requests[4])[0]
    assert "keep.txt" in listing and "hi" in listing and "asked" not in listing, listing
    # What the model server received: the agent's prompt in the system prompt, and its skill by name.
    system = json.dumps(requests[0].get("system"))
    assert PROMPT in system
    assert SKILL in json.dumps(requests[0])

    audit = logs("hasty", "audit")
    assert [r["seq"] for r in audit] == list(range(1, len(audit) + 1))
    # PostToolUse is checked against its own call.
    judged = [r for r in audit if r["event"] != "PostToolUse"]
    assert [(r["event"], r.get("decision")) for r in judged] == [
        ("SessionStart", None), ("UserPromptSubmit", None),
        ("PreToolUse", "allow"),
        ("PreToolUse", "deny"),
        ("PreToolUse", "ask"), ("Answer", "deny"),
        ("PreToolUse", "allow"),
        ("Stop", None), ("SessionEnd", None),
    ]
    assert judged[3]["input"]["command"] == "rm -rf /workspace" and judged[3]["rule"] == "Bash(rm -rf:*)"
    assert judged[5]["outcome"] == "timeout" and judged[5]["id"] == judged[4]["id"]
    ran = {r["tool_use_id"]: r["seq"] for r in audit if r["event"] == "PreToolUse" and r["decision"] == "allow"}
    after = {r["tool_use_id"]: r["seq"] for r in audit if r["event"] == "PostToolUse"}
    assert set(after) == set(ran) and all(after[call] > ran[call] for call in ran)

    # Nothing went to a model host: the proxy answered it from the script, and the stand-in saw nothing.
    egress = logs("hasty", "egress")
    assert egress and {(r["decision"], r["rule"]) for r in egress} == {("allow", "model-script")}
    assert model_server.requests() == []


def _pending(target: str) -> list[dict]:
    result = bottle_cli("pending", target, "--json")
    return json.loads(result.stdout) if result.returncode == 0 else []


def _wait_for_pending(target: str, proc: subprocess.Popen, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"bottle run ended early: {proc.stderr.read().decode()}"
        rows = _pending(target)
        if rows:
            return rows[0]
        time.sleep(0.5)
    raise AssertionError("no call ever waited for an answer")


def test_asked_calls_wait_for_bottle_approve_and_bottle_deny(manifest, tmp_path, model_server):
    script = write_script(tmp_path, [
        bash("touch /workspace/asked-first"),
        bash("touch /workspace/asked-second"),
        bash("ls /workspace"),
        "answered",
    ])
    proc = subprocess.Popen([BOTTLE, "run", "-m", str(manifest), "--no-copy-cwd", "--model-script", str(script),
                             "guarded", "--", "go"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        first = _wait_for_pending("guarded", proc)
        assert first["tool"] == "Bash" and first["input"]["command"] == "touch /workspace/asked-first"
        wrong = bottle_cli("approve", "guarded", "999")
        assert wrong.returncode == 2 and "no call waits under id '999'" in wrong.stderr.decode()
        assert bottle_cli("approve", "guarded", first["id"]).returncode == 0
        second = _wait_for_pending("guarded", proc)
        assert second["id"] != first["id"]
        refused = bottle_cli("deny", "guarded", second["id"], "--reason", "not today")
        assert refused.returncode == 0, refused.stderr.decode()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "2 asked (1 approved, 1 denied, 0 timed out)" in err.decode()
    requests = model_requests("guarded")
    assert "the user denied this Bash call: not today" in tool_results(requests[2])[0]
    listing = tool_results(requests[3])[0]
    assert "asked-first" in listing and "asked-second" not in listing
    outcomes = [(r["id"], r["outcome"]) for r in logs("guarded", "audit") if r["event"] == "Answer"]
    assert outcomes == [(first["id"], "approved"), (second["id"], "denied")]
    assert model_server.requests() == []


def _bottle(manifest: Path, agent: str, script: Path, start: str = "cold"):
    """A bottle rehearsing ``script``, on the backend ``BOTTLE_BACKEND`` names (the ``manifest`` fixture sets it)."""
    backend = os.environ["BOTTLE_BACKEND"]
    if start == "pooled":  # a rehearsal claims a bottle pooled without a script: its packet filter is set again
        return bottle_of(manifest, agent, model_script=script, start=start, backend=backend)
    spec = BottleSpec(manifest=Manifest.load(manifest), agent=agent, copy_cwd=False, cwd=manifest.parent,
                      model_script=script)
    plugins = docker_plugins(backend)
    return session.running(plugins, session.prepare(plugins, spec))


EVIL_SETTINGS = {
    "disableAllHooks": True, "hooks": {},
    "env": {"PATH": "/workspace/evil:/usr/local/bin:/usr/bin:/bin", "CLAUDE_CODE_SIMPLE": "1"},
}


def test_the_agent_cannot_switch_supervision_off(manifest, tmp_path, model_server, start):
    evil = json.dumps(EVIL_SETTINGS)
    fake = "#!/bin/sh\\necho allow\\nexit 0\\n"
    script = write_script(tmp_path, [
        bash("rm -f /etc/claude-code/managed-settings.json; echo '{}' > /etc/claude-code/managed-settings.json; "
             "chmod 666 /etc/claude-code/managed-settings.json; ls -l /etc/claude-code"),
        bash(f"mkdir -p /workspace/evil /workspace/.claude ~/.claude && printf '{fake}' > /workspace/evil/curl && "
             f"cp /workspace/evil/curl /workspace/evil/sh && chmod +x /workspace/evil/*"),
        {"tool_use": [{"name": "Write", "input": {"file_path": path, "content": evil}} for path in (
            "/home/agent/.claude/settings.json", "/home/agent/.claude/settings.local.json",
            "/workspace/.claude/settings.json", "/workspace/.claude/settings.local.json")]},
        bash("rm -rf /workspace/keep"),
        "first session done",
        # A new session, started after the agent's settings were written, reads them all.
        bash("rm -rf /workspace/keep"),
        "second session done",
    ])
    with _bottle(manifest, "guarded", script, start) as bottle:
        bottle.check(["mkdir", "/workspace/keep"])
        before = bottle.check(["cat", "/etc/claude-code/managed-settings.json"]).stdout
        for _ in range(2):
            result = bottle.exec(bottle.claude_argv(["go"], interactive=False))
            assert result.returncode == 0, result.stderr.decode()
        assert bottle.exec(["test", "-d", "/workspace/keep"]).ok, "a denied call ran"
        assert bottle.check(["cat", "/etc/claude-code/managed-settings.json"]).stdout == before
        stat = bottle.check(["stat", "-c", "%U %a", "/etc/claude-code", "/etc/claude-code/managed-settings.json"])
        assert stat.stdout.split(b"\n")[:2] == [b"root 755", b"root 644"]
        assert not bottle.exec(["touch", "/etc/claude-code/managed-mcp.json"]).ok  # nor anything beside it
        # The attempts were real: the agent's own settings files hold the switch-off.
        for path in ("/home/agent/.claude/settings.json", "/workspace/.claude/settings.local.json"):
            assert json.loads(bottle.check(["cat", path]).stdout)["disableAllHooks"] is True
        slug = bottle.plan.slug
    audit = logs(slug, "audit")
    denied = [r for r in audit if r["event"] == "PreToolUse" and r["decision"] == "deny"]
    assert [r["input"]["command"] for r in denied] == ["rm -rf /workspace/keep"] * 2
    assert len({r["session"] for r in denied}) == 2
    writes = [r for r in audit if r["event"] == "PreToolUse" and r["tool"] == "Write"]
    assert len(writes) == 4, "every Write went past the supervisor"
    assert model_server.requests() == []


def _supervisor_pids(bottle) -> list[str]:
    """The bundle's processes running the supervisor (the pattern does not match the probe's own shell)."""
    found = bottle.exec_bundle(["sh", "-c", "for p in /proc/[0-9]*; do grep -q 'image[.]supervisor' $p/cmdline "
                                            "2>/dev/null && echo ${p#/proc/}; done"], user="bundle")
    return found.stdout.decode().split()


def _wake_supervisor(bottle) -> None:
    """Start the supervisor (it starts on its first connection): the agent asks its port for a page it has not."""
    plan = bottle.plan
    answer = bottle.exec(["curl", "-s", "--noproxy", "*", f"http://{plan.network.bundle_ip}:{plan.supervise.port}/"])
    assert json.loads(answer.stdout) == {"error": "not here"}, answer


def _kill_supervisor(bottle) -> None:
    _wake_supervisor(bottle)  # a supervisor never started has no process to kill
    bottle.exec_bundle(["python3", "-c", (
        "import os, signal\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        if b'image.supervisor' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
        "            os.kill(int(pid), signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n")], user="bundle")


#: A tool call that lasts until the test says go (bounded: a minute at most).
WAIT_FOR_GO = "for i in $(seq 600); do [ -e /tmp/go ] && break; sleep 0.1; done"


def test_with_the_supervisor_killed_the_next_call_is_denied(manifest, tmp_path, model_server):
    script = write_script(tmp_path, [
        {"tool_use": [{"name": "Bash", "input": {"command": WAIT_FOR_GO, "description": "wait"}},
                      {"name": "Bash", "input": {"command": "touch /workspace/after-kill", "description": "late"}}]},
        "done",
    ])
    with _bottle(manifest, "guarded", script) as bottle:
        audit_file = Path(bottle.plan.state_dir) / "logs" / "audit.jsonl"
        outcome: dict = {}
        runner = threading.Thread(target=lambda: outcome.update(result=bottle.exec(
            ["timeout", "90", *bottle.claude_argv(["go"], interactive=False)])))
        runner.start()
        deadline = time.monotonic() + 60
        while not (audit_file.exists() and "/tmp/go" in audit_file.read_text()):
            assert time.monotonic() < deadline, "the first call never reached the supervisor"
            time.sleep(0.1)
        _kill_supervisor(bottle)
        bottle.check(["touch", "/tmp/go"])  # the first call may end only now, so the next one meets a dead supervisor
        runner.join(120)
        assert not runner.is_alive()
        assert not bottle.exec(["test", "-e", "/workspace/after-kill"]).ok, "the call after the kill ran"
        # The agent was told why: Claude Code's own refusal is in its transcript.
        transcript = bottle.exec(["sh", "-c", "cat ~/.claude/projects/*/*.jsonl"]).text()
        assert BLOCKED in transcript and "ECONNREFUSED" in transcript
    commands = [r["input"]["command"] for r in logs(bottle.plan.slug, "audit") if r["event"] == "PreToolUse"]
    assert commands == [WAIT_FOR_GO]
    assert model_server.requests() == []


def _post(bottle, event: str, payload: dict) -> subprocess.CompletedProcess:
    """One hook event posted by the agent itself, as claude's http hook would: ``curl``'s status, the answer."""
    plan = bottle.plan
    return bottle.exec(["curl", "-s", "--noproxy", "*", "-w", "\\n%{http_code}", "-H", "Content-Type: application/json",
                        "--data-binary", "@-", f"http://{plan.network.bundle_ip}:{plan.supervise.port}/hook?event={event}"],
                       stdin=json.dumps(payload).encode())


def test_the_supervisor_starts_on_the_first_hook_event_and_judges_it(manifest, tmp_path, model_server):
    """No supervisor process until the first event; that event is answered by the policy, as every later one."""
    script = write_script(tmp_path, ["nothing to do"])
    with _bottle(manifest, "guarded", script) as bottle:
        assert _supervisor_pids(bottle) == [], "the supervisor runs before anything used it"
        pending = bottle_cli("pending", bottle.plan.slug, "--json")
        assert pending.returncode == 0 and json.loads(pending.stdout) == [], pending.stderr
        denied = _post(bottle, "PreToolUse", {"session_id": "s1", "tool_name": "Bash",
                                              "tool_input": {"command": "rm -rf /workspace/keep"}})
        body, status = denied.stdout.decode().rsplit("\n", 1)
        assert status == "200" and DENIED_REASON in body
        assert json.loads(body)["hookSpecificOutput"]["permissionDecision"] == "deny"
        pids = _supervisor_pids(bottle)
        assert len(pids) == 1, "the first event started the supervisor"
        # The benign counterpart, answered by the same process: a call no rule names passes.
        allowed = _post(bottle, "PreToolUse", {"session_id": "s1", "tool_name": "Bash", "tool_input": {"command": "ls"}})
        assert allowed.stdout.decode().rsplit("\n", 1) == ["{}", "200"]
        assert _supervisor_pids(bottle) == pids
        slug = bottle.plan.slug
    calls = [(r["input"]["command"], r["decision"]) for r in logs(slug, "audit") if r["event"] == "PreToolUse"]
    assert calls == [("rm -rf /workspace/keep", "deny"), ("ls", "allow")]
    assert model_server.requests() == []


def test_a_supervisor_that_cannot_start_refuses_the_call(manifest, tmp_path, model_server):
    """The supervisor starts on claude's first hook event; when it cannot, that event and the calls after it
    are refused (Claude Code blocks them), and the bundle ends as with any daemon's end."""
    script = write_script(tmp_path, [bash("touch /workspace/ran"), "done"])
    with _bottle(manifest, "hasty", script) as bottle:
        # Its control socket's path taken by a folder: the supervisor fails as it starts.
        bottle.exec_bundle(["mkdir", "/var/lib/bottle/supervise.sock"], user="bundle")
        assert _supervisor_pids(bottle) == []
        first = _post(bottle, "PreToolUse", {"session_id": "s1", "tool_name": "Bash",
                                             "tool_input": {"command": "touch /workspace/ran"}})
        status = first.stdout.decode().rsplit("\n", 1)[-1]
        assert status == "000" or status.startswith("5"), f"not a connection error nor a 5xx: {status}"
        bottle.exec(["timeout", "120", *bottle.claude_argv(["go"], interactive=False)])
        ran = bottle.exec(["test", "-e", "/workspace/ran"]).ok
        slug = bottle.plan.slug
    assert not ran, "a call ran with no supervisor to judge it"
    bundle_log = (Path(bottle.plan.state_dir) / "logs" / "bundle.log").read_text()
    assert "bottle-bundle: supervisor exited (1); stopping" in bundle_log
    assert [r for r in logs(slug, "audit") if r["event"] == "PreToolUse"] == []
    assert model_server.requests() == []


#: What Claude Code says when a supervision hook failed and so blocked the call.
BLOCKED = 'blocking because onFailure is \\"block\\"'

#: A stand-in for the supervisor, on its port in the bundle: it answers every hook event in one wrong way.
STAND_IN = r"""
import http.server, sys, time
port, how = int(sys.argv[1]), sys.argv[2]
class Answer(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def reply(self, status, body):
        self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.reply(200, b"ready")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if how == "hang": time.sleep(120)
        self.reply(*{"passes": (200, b"{}"), "status-500": (500, b"{}"), "not-json": (200, b"allow"),
                     "wrong-shape": (200, b'{"hookSpecificOutput": "allow"}'), "hang": (200, b"{}")}[how])
http.server.ThreadingHTTPServer(("0.0.0.0", port), Answer).serve_forever()
"""


@pytest.mark.parametrize("how", ["passes", "status-500", "not-json", "wrong-shape", "hang"])
def test_a_supervisor_that_answers_wrongly_refuses_the_call(manifest, tmp_path, model_server, how):
    """Whatever answers on the supervisor's port, only a well-formed answer lets a call run."""
    script = write_script(tmp_path, [bash("touch /workspace/ran"), "done"])
    with _bottle(manifest, "hasty", script) as bottle:
        plan = bottle.plan
        _kill_supervisor(bottle)
        bottle.exec_bundle(["sh", "-c", f"python3 -c {shlex.quote(STAND_IN)} {plan.supervise.port} {how} >/dev/null 2>&1 &"],
                           user="bundle")
        probe = ["curl", "-s", "--noproxy", "*", f"http://{plan.network.bundle_ip}:{plan.supervise.port}/"]
        deadline = time.monotonic() + 60
        while bottle.exec(probe).text() != "ready":
            assert time.monotonic() < deadline, "the stand-in never listened"
            time.sleep(0.2)
        result = bottle.exec(["timeout", "120", *bottle.claude_argv(["go"], interactive=False)])
        assert result.returncode == 0, result.stderr.decode()
        ran = bottle.exec(["test", "-e", "/workspace/ran"]).ok
        transcript = bottle.exec(["sh", "-c", "cat ~/.claude/projects/*/*.jsonl"]).text()
    if how == "passes":  # the benign counterpart: a well-formed answer with no objection lets it run
        assert ran and BLOCKED not in transcript
    else:
        assert not ran, f"a supervisor answering {how} let the call run"
        assert BLOCKED in transcript
    assert model_server.requests() == []
