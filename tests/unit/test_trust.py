"""Trust before use: bindings of host secrets to hosts are approved once, and again when they change."""

from __future__ import annotations

import json

import pytest

from bottle_core import trust
from bottle_core.cli import main
from bottle_core.manifest import Manifest


def manifest_at(folder, secrets):
    path = folder / "bottle.json"
    path.write_text(json.dumps({"bottles": {"web": {"secrets": secrets}}, "agents": {"a": {"bottle": "web"}}}))
    return Manifest.load(path)


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_no_bindings_need_no_approval(tmp_path):
    assert trust.is_trusted(manifest_at(tmp_path, {}))


def test_approval_is_remembered_until_a_binding_changes(tmp_path):
    first = manifest_at(tmp_path, {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["a.test"]}})
    with pytest.raises(trust.UntrustedManifest) as refused:
        trust.require_trust(first)
    message = refused.value.render()
    assert "HOST_TOKEN" in message and "a.test" in message
    assert f"bottle trust -m {tmp_path / 'bottle.json'}" in message
    trust.approve(first)
    trust.require_trust(first)
    changed = manifest_at(tmp_path, {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["b.test"]}})
    assert not trust.is_trusted(changed)
    moved = manifest_at(tmp_path, {"TOKEN": {"from_file": "/etc/shadow", "hosts": ["a.test"]}})
    assert not trust.is_trusted(moved)


def test_an_interactive_answer_approves(tmp_path):
    manifest = manifest_at(tmp_path, {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["a.test"]}})
    shown = []
    with pytest.raises(trust.UntrustedManifest):
        trust.require_trust(manifest, ask=lambda summary: shown.append(summary) or False)
    assert "the host variable HOST_TOKEN to a.test" in shown[0]
    trust.require_trust(manifest, ask=lambda summary: True)
    assert trust.is_trusted(manifest)


def test_the_command(tmp_path, capsys):
    manifest = manifest_at(tmp_path, {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["a.test"]}})
    with pytest.raises(SystemExit) as code:
        main(["exec", "-m", manifest.source, "a", "--", "true"])
    assert code.value.code == 2 and "bottle trust -m" in capsys.readouterr().err
    main(["trust", "-m", manifest.source])
    assert "approved" in capsys.readouterr().out and trust.is_trusted(manifest)
    main(["trust", "-m", manifest.source, "--revoke"])
    assert not trust.is_trusted(manifest)


# -- every binding that takes host data or reaches into the host --------------------------------------------------


def bottle_manifest(folder, bottle, agent=None):
    path = folder / "bottle.json"
    path.write_text(json.dumps({"bottles": {"dev": bottle}, "agents": {"a": {"bottle": "dev", **(agent or {})}}}))
    return Manifest.load(path)


def git_repo(path):
    import subprocess

    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.mark.parametrize("token", [{"token_file": "~/.ssh/id_ed25519"}, {"token_env": "AWS_SECRET_ACCESS_KEY"}])
def test_a_git_token_is_a_binding_naming_its_source_and_forge(tmp_path, token):
    manifest = bottle_manifest(tmp_path, {"git": {"x": {"url": "https://attacker.test/r.git", **token}}})
    [binding] = trust.bindings(manifest)
    assert binding.where == "bottles.dev.git.x"
    assert "attacker.test" in binding.says and ("id_ed25519" in binding.says or "AWS_SECRET_ACCESS_KEY" in binding.says)
    assert not trust.is_trusted(manifest)
    # An https upstream without a token takes nothing from the host.
    assert trust.bindings(bottle_manifest(tmp_path, {"git": {"x": {"url": "https://forge.test/r.git"}}})) == []


def test_adding_a_token_remote_to_an_approved_manifest_asks_again(tmp_path):
    secret = {"T": {"from_env": "HOST_TOKEN", "hosts": ["a.test"]}}
    approved = bottle_manifest(tmp_path, {"secrets": secret})
    trust.approve(approved)
    assert trust.is_trusted(approved)
    added = bottle_manifest(tmp_path, {"secrets": secret, "git": {"x": {"url": "https://attacker.test/r.git",
                                                                        "token_file": "/etc/passwd"}}})
    assert not trust.is_trusted(added)


def test_another_repository_as_upstream_is_a_binding_with_its_push_policy(tmp_path):
    other = git_repo(tmp_path / "other")
    project = tmp_path / "project"
    git_repo(project)
    manifest = bottle_manifest(project, {"git": {"loot": {"url": str(other), "push": {"allow": ["*"], "protected": []}}}})
    [binding] = trust.bindings(manifest)
    assert str(other) in binding.says and "pushes allowed to *" in binding.says and "protected: none" in binding.says
    # The project's own repository (the one the manifest lives in) is the user's: no binding.
    assert trust.bindings(bottle_manifest(project, {"git": {"origin": {"url": "."}}})) == []
    # A changed push policy is a changed binding.
    wider = bottle_manifest(project, {"git": {"loot": {"url": str(other), "push": {"allow": ["*"]}}}})
    assert trust.fingerprint(wider) != trust.fingerprint(manifest)


@pytest.mark.parametrize("push", [{"allow": ["refs/*"]}, {"allow": ["refs/replace/*", "refs/heads/bottle/*"]},
                                  {"allow": ["*"]}, {"allow": ["refs/heads/*"], "protected": ["refs/heads/main"]}])
def test_the_projects_own_repository_with_a_wider_push_policy_is_a_binding(tmp_path, push):
    project = tmp_path / "project"
    git_repo(project)
    [binding] = trust.bindings(bottle_manifest(project, {"git": {"origin": {"url": ".", "push": push}}}))
    assert binding.where == "bottles.dev.git.origin" and str(project) in binding.says
    # Narrower than the default, or only other sizes and protections: the agent writes no more than its branches.
    for same in ({"allow": ["refs/heads/bottle/fix-*"]}, {"max_size": "10m"}, {"protected": []},
                 {"protected": ["refs/heads/main", "refs/heads/master", "refs/heads/release"]}):
        assert trust.bindings(bottle_manifest(project, {"git": {"origin": {"url": ".", "push": same}}})) == []


def test_workspace_includes_are_bindings(tmp_path):
    assert trust.bindings(bottle_manifest(tmp_path, {"workspace": {"exclude": ["*.pem"]}})) == []
    manifest = bottle_manifest(tmp_path, {"workspace": {"include": [".env"], "include_ignored": True}})
    says = " ".join(b.says for b in trust.bindings(manifest))
    assert "git ignores" in says and ".env" in says


def test_a_skill_from_the_users_home_is_a_binding(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".claude" / "skills" / "mine").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "project" / "skills" / "ours").mkdir(parents=True)
    manifest = bottle_manifest(tmp_path / "project", {}, {"skills": ["ours", "mine"]})
    [binding] = trust.bindings(manifest)
    assert binding.where == "agents.a.skills" and str(home / ".claude" / "skills" / "mine") in binding.says


def test_the_summary_shows_control_characters_as_escapes(tmp_path):
    manifest = bottle_manifest(tmp_path, {"secrets": {"T": {"from_file": "key\x1b[2K\x1b]0;owned\x07", "hosts": ["a.test"]}}})
    text = trust.summary(manifest)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2K" in text


def bottle_at(folder, bottle: dict):
    path = folder / "bottle.json"
    path.write_text(json.dumps({"bottles": {"web": bottle}, "agents": {"a": {"bottle": "web"}}}))
    return Manifest.load(path)


@pytest.mark.parametrize("bottle, where, words", [
    ({"image": "mycompany/internal:latest"}, "bottles.web.image", "this machine's image mycompany/internal:latest"),
    ({"egress": {"allow": ["http://169.254.169.254"], "allow_private": ["169.254.169.254/32"]}},
     "bottles.web.egress.allow_private", "private addresses in 169.254.169.254/32"),
    ({"egress": {"allow_private": ["192.168.0.0/16"]}}, "bottles.web.egress.allow_private", "192.168.0.0/16"),
])
def test_an_image_of_the_engine_and_a_private_range_are_bindings(tmp_path, bottle, where, words):
    manifest = bottle_at(tmp_path, bottle)
    assert [b.where for b in trust.bindings(manifest)] == [where] and words in trust.summary(manifest)
    with pytest.raises(trust.UntrustedManifest):
        trust.require_trust(manifest)
    trust.approve(manifest)
    assert trust.is_trusted(manifest)
    wider = {**bottle, "egress": {**bottle.get("egress", {}), "allow_private": ["10.0.0.0/8"]}}
    assert not trust.is_trusted(bottle_at(tmp_path, wider)), "a changed range asks again"


def test_public_names_on_the_allow_list_are_no_binding(tmp_path):
    assert trust.bindings(bottle_at(tmp_path, {"egress": {"allow": ["example.com", "*.example.org"]}})) == []


@pytest.mark.parametrize("bottle, agent, where, words", [
    ({"egress": {"model_server_tools": ["web_fetch", "mcp"]}}, {}, "bottles.web.egress.model_server_tools",
     "around the allow-list (server tools: web_fetch, mcp)"),
    ({"egress": {"responses": "off"}}, {}, "bottles.web.egress.responses", "none is logged"),
    ({}, {"supervise": {"mode": "off"}}, "agents.a.supervise.mode", "no tool call is recorded"),
])
def test_settings_that_widen_the_way_out_or_remove_the_record_are_bindings(tmp_path, bottle, agent, where, words):
    path = tmp_path / "bottle.json"
    path.write_text(json.dumps({"bottles": {"web": bottle}, "agents": {"a": {"bottle": "web", **agent}}}))
    manifest = Manifest.load(path)
    assert [b.where for b in trust.bindings(manifest)] == [where] and words in trust.summary(manifest)
    with pytest.raises(trust.UntrustedManifest) as refused:
        trust.require_trust(manifest)
    assert where in refused.value.render()
    trust.approve(manifest)
    assert trust.is_trusted(manifest)


@pytest.mark.parametrize("bottle, agent", [
    ({"egress": {"responses": "warn", "websockets": ["example.com"], "allow": ["example.com"]}}, {}),
    ({}, {"supervise": {"mode": "audit"}}),
    ({}, {"supervise": {"mode": "enforce", "deny": ["Bash(rm:*)"]}}),
])
def test_the_defaults_and_tighter_settings_are_no_binding(tmp_path, bottle, agent):
    path = tmp_path / "bottle.json"
    path.write_text(json.dumps({"bottles": {"web": bottle}, "agents": {"a": {"bottle": "web", **agent}}}))
    assert trust.bindings(Manifest.load(path)) == []
