"""The real `claude` binary in a bottle, talking through the bundle's proxy to a scripted model server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .bottles import bottle_cli, bottle_of, write_manifest

pytestmark = pytest.mark.integration

PROMPT = "You are demo. Be brief."


MODEL_KEY = "sk-ant-test-not-a-real-key-0123456789"


@pytest.fixture
def manifest(tmp_path: Path, outbound_env, internet_egress, monkeypatch) -> Path:
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", MODEL_KEY)
    # Claude Code's host folder: an empty one, so the developer's own login and preferences play no part.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "host-claude"))
    return write_manifest(tmp_path, {"bottles": {"dev": {"egress": internet_egress}},
                                     "agents": {"demo": {"skills": [], "prompt": PROMPT, "bottle": "dev"}}})


def test_claude_print_mode_through_the_proxy(manifest, model_server, backend):
    model_server.set_script(["pong from the scripted model"])
    with bottle_of(manifest, "demo", backend=backend) as bottle:
        argv = bottle.claude_argv(["ping", "--output-format", "json"], interactive=False)
        assert argv[argv.index("--append-system-prompt-file") + 1] == bottle.plan.guest.prompt_file
        result = bottle.exec(argv)
        # The agent only ever holds a placeholder key; credentials live in the bundle.
        seen = bottle.exec(["printenv", "ANTHROPIC_API_KEY"]).stdout.strip()
        assert seen.startswith(b"bottle-placeholder-") and MODEL_KEY.encode() not in seen
        assert bottle.exec(["grep", "-rqs", MODEL_KEY, "/proc/self/environ", "/home/agent", "/workspace"]).returncode == 1
    assert result.returncode == 0, result.stderr.decode() + model_server.output()[-2000:]
    answer = json.loads(result.stdout)
    assert answer["result"] == "pong from the scripted model"
    assert any(PROMPT in system for system in model_server.system_prompts())
    # ... and the proxy swapped the real key in on the way to the model host.
    keys = {r["headers"].get("x-api-key") for r in model_server.requests() if r["method"] == "POST"}
    assert keys == {"sha256:" + hashlib.sha256(MODEL_KEY.encode()).hexdigest()}


def test_claude_runs_tools_inside_the_sandbox(manifest, model_server):
    model_server.set_script([
        {"tool_use": {"name": "Bash", "input": {"command": "id -u > /workspace/made-by-claude.txt",
                                                "description": "write a file"}}},
        "done",
    ])
    with bottle_of(manifest, "demo") as bottle:
        result = bottle.exec(bottle.claude_argv(["write the file"], interactive=False))
        assert result.returncode == 0, result.stderr.decode()
        assert bottle.exec(["cat", "/workspace/made-by-claude.txt"]).stdout.strip() == b"1000"


def test_bottle_run_one_shot(manifest, model_server, tmp_path):
    model_server.set_script(["hello from bottle run"])
    result = bottle_cli("run", "-m", str(manifest), "--no-copy-cwd", "demo", "--", "hi", "--output-format", "json",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["result"] == "hello from bottle run"
    assert b"warning" not in result.stderr


def test_bottle_run_says_what_to_do_when_the_host_has_no_model_credentials(manifest, model_server, tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    result = bottle_cli("run", "-m", str(manifest), "--no-copy-cwd", "demo", "--", "hi", cwd=tmp_path)
    assert result.returncode == 2, result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "set ANTHROPIC_API_KEY, or log in with `claude`" in lines[0], lines
    assert model_server.requests() == []
