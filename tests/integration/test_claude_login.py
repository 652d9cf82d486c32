"""A host Claude Code subscription login: the agent holds placeholders only, the model host sees the real token."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path

import pytest

from .bottles import bottle_of, write_manifest
from .conftest import _remove_quietly, wait_until_listening

pytestmark = pytest.mark.integration

OLD_ACCESS = "sk-ant-oat01-test-old-access-" + "a" * 24
OLD_REFRESH = "sk-ant-ort01-test-old-refresh-" + "b" * 24
# What the token endpoint stand-in hands out for OLD_REFRESH (bottle_core/bundle/image/model_server.py, refreshed_pair).
_DIGEST = hashlib.sha256(OLD_REFRESH.encode()).hexdigest()
NEW_ACCESS, NEW_REFRESH = f"sk-ant-oat01-refreshed-{_DIGEST[:24]}", f"sk-ant-ort01-refreshed-{_DIGEST[24:48]}"


@pytest.fixture
def token_server(internet, tmp_path_factory):
    """A stand-in for Claude Code's token endpoint, reached from the host (plain HTTP on the test network)."""
    directory = tmp_path_factory.mktemp("token-server")
    directory.chmod(0o777)
    (directory / "requests.jsonl").touch(mode=0o666)
    container = internet.start(f"bottle-test-token-{secrets.token_hex(4)}",
                               ["python3", "/opt/bottle-test/model_server.py", "--port", "80", "--log",
                                "/srv/requests.jsonl"],
                               binds={str(directory): {"bind": "/srv", "mode": "rw"}})
    try:
        wait_until_listening(container, "model server listening on http")
        yield f"http://{internet.ip_of(container)}/v1/oauth/token", directory / "requests.jsonl"
    finally:
        _remove_quietly(container)


def login_folder(tmp_path: Path, expires_in: float) -> Path:
    folder = tmp_path / "host-claude"
    folder.mkdir()
    credentials = {"claudeAiOauth": {"accessToken": OLD_ACCESS, "refreshToken": OLD_REFRESH,
                                     "expiresAt": int((time.time() + expires_in) * 1000),
                                     "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}}
    (folder / ".credentials.json").write_text(json.dumps(credentials))
    (folder / ".credentials.json").chmod(0o600)
    return folder


@pytest.fixture
def manifest(tmp_path: Path, outbound_env, internet_egress, monkeypatch) -> Path:
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return write_manifest(tmp_path, {"bottles": {"dev": {"egress": internet_egress}},
                                     "agents": {"demo": {"skills": [], "prompt": "Be brief.", "bottle": "dev"}}})


#: Lists where a value (read from stdin, so the probe's own command line never holds it) occurs in the agent:
#: any process's environment or command line (what `ps` shows), the agent's home, the workspace, /tmp, /etc.
PROBE = """read -r pat
grep -rlsF -e "$pat" /proc/[0-9]*/environ ~ /workspace /tmp /etc
for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -e "$pat" && echo "$p/cmdline"; done
true"""


def secrets_seen_inside(bottle, *values: str) -> dict[str, str]:
    """Where the agent can find each of ``values``, for those it can find at all."""
    found = {}
    for value in values:
        where = bottle.exec(["sh", "-c", PROBE], stdin=value.encode() + b"\n").text().strip()
        if where:
            found[value] = where
    return found


def run_claude(bottle) -> str:
    result = bottle.exec(bottle.claude_argv(["hello", "--output-format", "json"], interactive=False))
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return json.loads(result.stdout)["result"]


def test_an_expired_login_is_refreshed_on_the_host_and_only_placeholders_reach_the_agent(
        manifest, model_server, token_server, tmp_path, monkeypatch):
    url, token_log = token_server
    folder = login_folder(tmp_path, expires_in=-60)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(folder))
    monkeypatch.setenv("BOTTLE_CLAUDE_TOKEN_URL", url)
    model_server.require_credentials(f"Bearer {NEW_ACCESS}")
    model_server.set_script(["answered for a subscriber"])

    with bottle_of(manifest, "demo") as bottle:
        placeholder = bottle.exec(["printenv", "CLAUDE_CODE_OAUTH_TOKEN"]).text().strip()
        assert placeholder.startswith("bottle-placeholder-")
        assert bottle.exec(["printenv", "ANTHROPIC_API_KEY"]).returncode == 1
        assert run_claude(bottle) == "answered for a subscriber"
        assert "environ" in secrets_seen_inside(bottle, placeholder).get(placeholder, "")  # the probe does find things
        assert secrets_seen_inside(bottle, OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH) == {}

    # The model host saw the refreshed access token, put in by the proxy.
    posts = [r for r in model_server.requests() if r["path"].startswith("/v1/messages")]
    assert posts and {r["headers"]["authorization"] for r in posts} == {
        "sha256:" + hashlib.sha256(f"Bearer {NEW_ACCESS}".encode()).hexdigest()}
    # The refresh happened once, on the host, with the old refresh token; the host keeps the new pair.
    grants = [json.loads(line)["body"] for line in token_log.read_text().splitlines()]
    assert grants == [{"grant_type": "refresh_token", "client_id": grants[0]["client_id"],
                       "scope": "user:inference user:profile",
                       "refresh_token": "sha256:" + hashlib.sha256(OLD_REFRESH.encode()).hexdigest()}]
    stored = json.loads((folder / ".credentials.json").read_text())["claudeAiOauth"]
    assert (stored["accessToken"], stored["refreshToken"]) == (NEW_ACCESS, NEW_REFRESH)
    assert stored["expiresAt"] > time.time() * 1000 and stored["subscriptionType"] == "max"
    assert (folder / ".credentials.json").stat().st_mode & 0o777 == 0o600


def test_a_valid_login_is_used_as_it_is(manifest, model_server, token_server, tmp_path, monkeypatch):
    url, token_log = token_server
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(login_folder(tmp_path, expires_in=3600)))
    monkeypatch.setenv("BOTTLE_CLAUDE_TOKEN_URL", url)
    model_server.require_credentials(f"Bearer {OLD_ACCESS}")
    model_server.set_script(["answered with the stored token"])
    with bottle_of(manifest, "demo") as bottle:
        assert run_claude(bottle) == "answered with the stored token"
        assert secrets_seen_inside(bottle, OLD_ACCESS, OLD_REFRESH) == {}
    assert token_log.read_text() == ""
