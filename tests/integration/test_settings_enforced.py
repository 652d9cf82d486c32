"""Manifest settings and flags whose effect no other module shows, each seen where a user would look.

An accepted setting is an enforced setting: for each field here, a bottle
that sets it shows its effect (to the agent, uid 1000, or in what the
stand-in servers received, or in the bottle's logs), and a bottle that
leaves it out shows the default, so neither check passes by accident.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .bottles import bottle_cli, bottle_of, left_after, ready_slugs, write_manifest
from .test_git_gate import make_repo

pytestmark = pytest.mark.integration

MODEL_KEY = "sk-ant-test-not-a-real-key-0123456789"


def _one_bottle(tmp_path: Path, bottle: dict, agent: dict | None = None) -> Path:
    folder = tmp_path / "manifest"
    folder.mkdir(exist_ok=True)
    return write_manifest(folder, {"bottles": {"dev": bottle}, "agents": {"demo": {"bottle": "dev", **(agent or {})}}})


def _plain(tmp_path: Path) -> Path:
    """A manifest of one bottle that sets nothing: the defaults to compare with."""
    folder = tmp_path / "plain"
    folder.mkdir()
    return write_manifest(folder, {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev"}}})


def test_env_reaches_the_agent(tmp_path):
    manifest = _one_bottle(tmp_path, {"env": {"APP_MODE": "staging with spaces", "LANG": "C.UTF-8"}})
    with bottle_of(manifest, "demo") as bottle:
        assert bottle.exec(["printenv", "APP_MODE"]).stdout == b"staging with spaces\n"
        assert bottle.exec(["printenv", "LANG"]).stdout == b"C.UTF-8\n"
    with bottle_of(_plain(tmp_path), "demo") as bottle:
        assert bottle.exec(["printenv", "APP_MODE"]).returncode == 1


def test_git_author_is_the_agents_identity_and_the_hosts_without_it(tmp_path):
    project = make_repo(tmp_path / "project")
    manifest = _one_bottle(tmp_path, {"git_author": {"name": "Review Bot", "email": "bot@example.test"}})
    ident = ["sh", "-c", "cd /workspace && git commit -q --allow-empty -m x && git log -1 --format='%an <%ae>|%cn <%ce>'"]
    with bottle_of(manifest, "demo", copy_cwd=True, cwd=project) as bottle:
        made = bottle.exec(ident)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == b"Review Bot <bot@example.test>|Review Bot <bot@example.test>"
    with bottle_of(_plain(tmp_path), "demo", copy_cwd=True, cwd=project) as bottle:
        made = bottle.exec(ident)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == b"Host User <host@example.test>|Host User <host@example.test>"


def _project_with_files(tmp_path: Path) -> Path:
    project = make_repo(tmp_path / "project")  # debug.log in it is ignored by git
    for rel, text in {"keys/server.pem": "PEM\n", "deploy/keys/old.pem": "PEM\n", "config/prod.yaml": "prod\n",
                      "docs/config/prod.yaml": "a copy\n", ".env": "KEY=1\n", ".env.example": "KEY=\n"}.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    return project


WORKSPACE_FILES = ["README.md", "src/app.py", "notes.txt", "debug.log", "keys/server.pem", "deploy/keys/old.pem",
                   "config/prod.yaml", "docs/config/prod.yaml", ".env", ".env.example"]


def _copied(bottle) -> set[str]:
    listing = " ".join(WORKSPACE_FILES)
    found = bottle.exec(["sh", "-c", f"cd /workspace && for f in {listing}; do test -e $f && echo $f; done"])
    return set(found.stdout.decode().split())


def test_workspace_exclude_and_include_decide_what_is_copied_in(tmp_path):
    project = _project_with_files(tmp_path)
    manifest = _one_bottle(tmp_path, {"workspace": {"exclude": ["*.pem", "config/prod.yaml"],
                                                    "include": [".env.example"]}})
    with bottle_of(manifest, "demo", copy_cwd=True, cwd=project) as bottle:
        assert _copied(bottle) == {"README.md", "src/app.py", "notes.txt", "docs/config/prod.yaml", ".env.example"}
    with bottle_of(_plain(tmp_path), "demo", copy_cwd=True, cwd=project) as bottle:
        # Only .env* files (and what git ignores) stay out by default.
        assert _copied(bottle) == set(WORKSPACE_FILES) - {".env", ".env.example", "debug.log"}


def test_workspace_include_ignored_copies_what_git_ignores(tmp_path):
    project = _project_with_files(tmp_path)
    manifest = _one_bottle(tmp_path, {"workspace": {"include_ignored": True}})
    with bottle_of(manifest, "demo", copy_cwd=True, cwd=project) as bottle:
        assert "debug.log" in _copied(bottle)
        assert bottle.exec(["cat", "/workspace/debug.log"]).stdout == b"ignored\n"
        assert ".env" not in _copied(bottle)  # ignored files come in, .env* files still stay out


@pytest.fixture
def claude_manifest(tmp_path, outbound_env, internet_egress, monkeypatch):
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", MODEL_KEY)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "host-claude"))

    def make(agent: dict) -> Path:
        folder = tmp_path / f"m{len(list(tmp_path.glob('m*')))}"
        folder.mkdir()
        return write_manifest(folder, {"bottles": {"dev": {"egress": internet_egress}},
                                       "agents": {"demo": {"bottle": "dev", **agent}}})
    return make


def _tools_and_model(bottle, model_server) -> tuple[set[str], set[str]]:
    model_server.reset()
    model_server.set_script(["done"])
    result = bottle.exec(bottle.claude_argv(["hi"], interactive=False))
    assert result.returncode == 0, result.stderr.decode() + model_server.output()[-2000:]
    asked = [body for body in model_server.messages() if body.get("tools")]
    assert asked, "claude never asked the model with its tools"
    return ({tool.get("name") for body in asked for tool in body["tools"]},
            {body.get("model") for body in asked})


def test_model_and_claude_args_shape_every_claude_run(claude_manifest, model_server):
    shaped = claude_manifest({"model": "claude-audit-model-1", "claude_args": ["--disallowedTools", "Bash"]})
    with bottle_of(shaped, "demo") as bottle:
        tools, models = _tools_and_model(bottle, model_server)
    assert models == {"claude-audit-model-1"}
    assert "Bash" not in tools and "Read" in tools
    plain = claude_manifest({})
    with bottle_of(plain, "demo") as bottle:
        tools, models = _tools_and_model(bottle, model_server)
    assert "claude-audit-model-1" not in models
    assert "Bash" in tools


def _pool(manifest: Path, agent: str) -> dict | None:
    rows = json.loads(bottle_cli("pool", "ls", "--json").stdout)
    return next((row for row in rows if row["agent"] == agent and row["manifest"] == str(manifest.resolve())), None)


def _wait_until(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)


def test_pool_idle_ends_an_unclaimed_pool_and_the_default_keeps_one(tmp_path):
    folder = tmp_path / "pool"
    folder.mkdir()
    manifest = write_manifest(folder, {"bottles": {"dev": {}},
                                       "agents": {"brief": {"bottle": "dev"}, "kept": {"bottle": "dev"}}})
    try:
        for agent, idle in (("brief", ["--idle", "1"]), ("kept", [])):
            filled = bottle_cli("pool", "fill", "-m", str(manifest), *idle, agent, cwd=folder, timeout=600)
            assert filled.returncode == 0, filled.stderr.decode()
        (brief,) = ready_slugs(manifest, "brief")
        (kept,) = ready_slugs(manifest, "kept")
        _wait_until(lambda: not (_pool(manifest, "brief") or {}).get("keeper"), "the idle pool's keeper ended")
        assert left_after("bottle.slug", brief) == ([], []), "the idle pool's bottle was removed"
        rounds = _pool(manifest, "kept")["rounds"]
        _wait_until(lambda: _pool(manifest, "kept")["rounds"] >= rounds + 2, "the other keeper looked again")
        assert _pool(manifest, "kept")["keeper"] and ready_slugs(manifest, "kept") == [kept]
    finally:
        bottle_cli("pool", "drain", "-m", str(manifest))


def _bash(command: str) -> dict:
    return {"tool_use": {"name": "Bash", "input": {"command": command, "description": "step"}}}


def _logs(target: str, kind: str) -> list[dict]:
    result = bottle_cli("logs", target, f"--{kind}", "--json")
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def _tool_results(target: str) -> list[str]:
    """The text of every tool result the model was sent, in order (runs with --model-script)."""
    texts = []
    for record in _logs(target, "model"):
        body = record.get("body") if isinstance(record.get("body"), dict) else {}
        last = (body.get("messages") or [{}])[-1].get("content")
        for block in last if record["path"].startswith("/v1/messages") and isinstance(last, list) else []:
            if block.get("type") == "tool_result":
                content = block.get("content")
                texts.append(content if isinstance(content, str) else json.dumps(content))
    return texts


@pytest.fixture
def rehearsed(tmp_path, outbound_env, monkeypatch):
    """``rehearsed(agent, steps)``: `bottle run` of ``agent`` against a script of Bash steps; its exit status."""
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    folder = tmp_path / "supervised"
    folder.mkdir()
    manifest = write_manifest(folder, {"bottles": {"dev": {}}, "agents": {
        "auditor": {"bottle": "dev", "supervise": {"mode": "audit", "deny": ["Bash(rm -rf:*)"]}},
        "strict": {"bottle": "dev", "supervise": {"mode": "enforce", "allow": ["Bash(echo:*)"], "default": "deny"}},
        "unsupervised": {"bottle": "dev", "supervise": {"mode": "off"}},
    }})

    def run(agent: str, steps: list[str]) -> str:
        script = folder / f"{agent}.json"
        script.write_text(json.dumps([*map(_bash, steps), "done"]))
        result = bottle_cli("run", "-m", str(manifest), "--no-copy-cwd", "--model-script", str(script), agent, "--",
                            "go", "--output-format", "text", cwd=folder)
        assert result.returncode == 0 and result.stdout.decode().strip() == "done", result.stderr.decode()
        return result.stderr.decode()
    return run


def test_supervise_audit_records_what_it_would_refuse_and_refuses_nothing(rehearsed):
    rehearsed("auditor", ["mkdir /tmp/doomed && rm -rf /tmp/doomed && echo removed-it"])
    (call,) = [r for r in _logs("auditor", "audit") if r["event"] == "PreToolUse"]
    assert (call["decision"], call["policy"]) == ("allow", "deny")
    assert any("removed-it" in text for text in _tool_results("auditor"))


def test_supervise_enforce_with_default_deny_runs_only_what_a_rule_allows(rehearsed):
    stderr = rehearsed("strict", ["echo allowed-ran", "touch /tmp/unmatched && echo unmatched-ran"])
    calls = [(r["input"]["command"], r["decision"]) for r in _logs("strict", "audit") if r["event"] == "PreToolUse"]
    assert calls == [("echo allowed-ran", "allow"), ("touch /tmp/unmatched && echo unmatched-ran", "deny")]
    results = _tool_results("strict")
    assert "allowed-ran" in results[0] and "unmatched-ran" not in results[1]
    assert "1 allowed, 1 denied by policy" in stderr


def test_supervise_off_runs_no_hooks_and_keeps_no_audit(rehearsed):
    stderr = rehearsed("unsupervised", ["echo unsupervised-ran"])
    assert _logs("unsupervised", "audit") == []
    assert any("unsupervised-ran" in text for text in _tool_results("unsupervised"))
    assert "bottle: supervise:" not in stderr


def test_token_user_is_the_user_name_sent_with_the_token(tmp_path, git_forge, outbound_env, internet_egress,
                                                         monkeypatch):
    import base64
    import hashlib

    from .test_git_gate import seed_bare

    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGE_TOKEN", git_forge.token)
    seed_bare(git_forge.repos / "named.git", tmp_path, {"main": 1})
    remote = {"url": git_forge.url("named"), "token_env": "FORGE_TOKEN"}
    manifest = _one_bottle(tmp_path, {"egress": internet_egress,
                                      "git": {"named": {**remote, "token_user": "oauth2"}, "plain": remote}})

    def sent_as(user: str) -> str:  # how the forge logs the Authorization header: hashed
        basic = base64.b64encode(f"{user}:{git_forge.token}".encode()).decode()
        return "sha256:" + hashlib.sha256(f"Basic {basic}".encode()).hexdigest()

    with bottle_of(manifest, "demo") as bottle:
        gate = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}"
        for name, user in (("named", "oauth2"), ("plain", "x-access-token")):
            git_forge.reset()
            listed = bottle.exec(["git", "ls-remote", f"{gate}/{name}.git"])
            assert listed.ok and b"refs/heads/main" in listed.stdout, listed.stderr
            seen = {r["headers"].get("authorization") for r in git_forge.requests()}
            assert seen == {sent_as(user)}, (name, seen)


def test_a_secret_from_a_file_swapped_into_the_url_and_responses_off(tmp_path, origin, outbound_env, internet_egress,
                                                                       monkeypatch):
    import hashlib

    from .test_inspection import INJECTION, serve

    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    real, other = "real-file-token-0123456789", "real-env-token-9876543210"
    monkeypatch.setenv("AUDIT_HEADER_TOKEN", other)
    folder = tmp_path / "manifest"
    folder.mkdir()
    (folder / "token.txt").write_text(real + "\n")
    manifest = _one_bottle(tmp_path, {
        "egress": {**internet_egress, "allow": ["allowed.test", "denied.test"], "responses": "off"},
        "secrets": {"FILE_TOKEN": {"from_file": "token.txt", "hosts": ["allowed.test"], "swap_in": ["header", "url"]},
                    "HEADER_TOKEN": {"from_env": "AUDIT_HEADER_TOKEN", "hosts": ["allowed.test"]}}})
    with bottle_of(manifest, "demo") as bottle:
        held = bottle.exec(["sh", "-c", "echo $FILE_TOKEN $HEADER_TOKEN"]).stdout.decode().split()
        assert all(p.startswith("bottle-placeholder-") for p in held) and real not in " ".join(held)
        file_token, header_token = held
        sent = bottle.exec(["curl", "-sS", "--max-time", "10", "-H", f"Authorization: Bearer {file_token}",
                            f"https://allowed.test/swapped?key={file_token}"])
        assert sent.returncode == 0, sent.stderr
        unswapped = bottle.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                                 f"https://allowed.test/kept?key={header_token}"])
        # responses = "off": a page that 'block' would withhold or cut arrives whole.
        page = bottle.exec(["curl", "-sS", "--max-time", "10", serve(INJECTION)])
    assert page.stdout.decode() == INJECTION
    swapped = next(r for r in origin.requests() if r["path"].startswith("/swapped"))
    assert swapped["path"] == f"/swapped?key={real}"
    assert swapped["headers"]["authorization"] == "sha256:" + hashlib.sha256(f"Bearer {real}".encode()).hexdigest()
    # A secret swapped into headers only is not swapped into a URL: the origin never gets its value there.
    kept = [r for r in origin.requests() if r["path"].startswith("/kept")]
    assert all(other not in r["path"] for r in kept), (unswapped.stdout, kept)


def test_the_k8s_backend_warns_of_a_pids_limit_it_does_not_apply(tmp_path, k8s_cluster):
    limited = _one_bottle(tmp_path, {"pids": 300, "memory": "1g"})
    warned = bottle_cli("--backend", "k8s", "plan", "-m", str(limited), "demo", cwd=tmp_path)
    assert warned.returncode == 0, warned.stderr.decode()
    assert json.loads(warned.stdout)["resources"]["pids"] == 300
    assert b"bottle: warning: bottles.dev.pids: not applied" in warned.stderr and b"k8s backend" in warned.stderr
    quiet = bottle_cli("--backend", "k8s", "plan", "-m", str(_plain(tmp_path)), "demo", cwd=tmp_path)
    assert quiet.returncode == 0 and b"warning" not in quiet.stderr, quiet.stderr.decode()
