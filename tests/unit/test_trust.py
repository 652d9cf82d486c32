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
    assert "HOST_TOKEN -> a.test" in shown[0]
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
