"""Claude Code's state in the bottle: what is written, and what of the host's files may travel."""

from __future__ import annotations

import json
import time

import pytest

from bottle_core import claude_login, claude_state
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import MODEL_KEY, NetworkPlan, base_plan
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec


@pytest.fixture
def host(tmp_path, monkeypatch):
    folder = tmp_path / "host-claude"
    folder.mkdir()
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(folder))
    return folder


def test_only_allow_listed_plain_preferences_travel(host):
    (host / ".claude.json").write_text(json.dumps({
        "theme": "light", "verbose": True, "editorMode": 7, "autoCompactEnabled": "yes",
        "primaryApiKey": "sk-ant-secret", "oauthAccount": {"accessToken": "x"}, "projects": {"/p": {}},
        "preferredNotifChannel": "x" * 500,
    }))
    (host / "settings.json").write_text(json.dumps({"theme": "dark", "env": {"TOKEN": "s"}, "apiKeyHelper": "cat k"}))
    assert claude_state.host_preferences() == {"theme": "dark", "verbose": True}


def test_no_host_files_means_no_preferences(host):
    (host / ".claude.json").write_text("not json")
    assert claude_state.host_preferences() == {}
    assert claude_state.user_settings({}) == {"skipDangerousModePermissionPrompt": True}


def plan_for(manifest_factory, tmp_path):
    spec = BottleSpec(manifest=Manifest.load(manifest_factory()), agent="demo", copy_cwd=False, cwd=tmp_path)
    network = NetworkPlan(name="n", subnet="10.9.0.0/24", bundle_ip="10.9.0.2", outbound="o")
    return base_plan(spec, backend="fake", stage_dir=tmp_path / "state", network=network, images={})


def test_global_config_trusts_the_workspace_and_approves_the_key_placeholder(manifest_factory, tmp_path, host,
                                                                             monkeypatch):
    monkeypatch.setenv(MODEL_KEY, "sk-ant-real")
    plan = plan_for(manifest_factory, tmp_path)
    key = next(s for s in plan.secrets if s.name == MODEL_KEY)
    config = claude_state.global_config(plan)
    assert config["hasCompletedOnboarding"] is True
    assert config["projects"] == {"/workspace": {"hasTrustDialogAccepted": True}}
    assert config["customApiKeyResponses"]["approved"] == [key.placeholder[-20:]]


def write_login(host, expires_in: float) -> None:
    (host / ".credentials.json").write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-a", "refreshToken": "sk-ant-ort01-r",
        "expiresAt": int((time.time() + expires_in) * 1000)}}))


def test_a_login_is_the_model_secret_only_without_an_api_key(manifest_factory, tmp_path, host, monkeypatch):
    write_login(host, 3600)
    monkeypatch.delenv(MODEL_KEY, raising=False)
    names = [s.name for s in plan_for(manifest_factory, tmp_path).secrets]
    assert claude_login.OAUTH_TOKEN in names and MODEL_KEY not in names
    monkeypatch.setenv(MODEL_KEY, "sk-ant-real")
    names = [s.name for s in plan_for(manifest_factory, tmp_path).secrets]
    assert MODEL_KEY in names and claude_login.OAUTH_TOKEN not in names


def test_a_valid_token_is_used_without_asking_the_endpoint(host, monkeypatch):
    write_login(host, 3600)
    monkeypatch.setenv("BOTTLE_CLAUDE_TOKEN_URL", "http://127.0.0.1:9/never")
    assert claude_login.access_token(claude_login.credentials_path()) == "sk-ant-oat01-a"


def test_a_failed_refresh_says_what_to_do(host, monkeypatch):
    write_login(host, -10)
    monkeypatch.setenv("BOTTLE_CLAUDE_TOKEN_URL", "http://127.0.0.1:9/v1/oauth/token")  # nothing listens there
    with pytest.raises(BottleRuntimeError) as caught:
        claude_login.access_token(claude_login.credentials_path())
    assert "refreshing it at http://127.0.0.1:9" in caught.value.render()
    assert "log in again, or set ANTHROPIC_API_KEY" in caught.value.render()
