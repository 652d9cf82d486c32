"""A setting that would not do what it says where it is used (a limit the backend does not apply, an include that
keeps nothing) is warned about, never dropped unsaid."""

from __future__ import annotations

import pytest

from bottle_core.manifest import Manifest
from bottle_core.plan import base_plan
from bottle_core.spec import BottleSpec
from bottle_core.testing import FAKE_IMAGES, FAKE_NETWORK

UNAPPLIED = {"pids": "not applied (no per-bottle process limit)"}


def plan_of(manifest_factory, tmp_path, bottle: dict, unapplied=None, *, cwd=None):
    path = manifest_factory({"bottles": {"dev": bottle}, "agents": {"demo": {"bottle": "dev"}}}, fmt="json")
    spec = BottleSpec(manifest=Manifest.load(path), agent="demo", copy_cwd=cwd is not None, cwd=cwd or tmp_path)
    return base_plan(spec, backend="tiny", stage_dir=tmp_path / "state", network=FAKE_NETWORK.model_copy(),
                     images=dict(FAKE_IMAGES), unapplied=unapplied)


def test_a_set_limit_the_backend_does_not_apply_is_named_on_stderr(manifest_factory, tmp_path, capsys):
    plan = plan_of(manifest_factory, tmp_path, {"pids": 300, "memory": "1g"}, UNAPPLIED)

    err = capsys.readouterr().err
    assert err == ("bottle: warning: bottles.dev.pids: not applied (no per-bottle process limit) on the tiny backend "
                   "(see docs/backends.md)\n")
    assert plan.resources.pids == 300  # the plan still records what was asked


@pytest.mark.parametrize(("bottle", "unapplied"), [
    ({"memory": "1g"}, UNAPPLIED),  # pids left at its default: nothing was asked that goes unapplied
    ({"pids": 300}, None),  # a backend that applies every limit
])
def test_no_warning_when_nothing_asked_goes_unapplied(manifest_factory, tmp_path, capsys, bottle, unapplied):
    plan_of(manifest_factory, tmp_path, bottle, unapplied)

    assert capsys.readouterr().err == ""


def test_including_git_config_in_a_git_repository_is_warned_about(manifest_factory, tmp_path, capsys):
    import subprocess

    repo, folder = tmp_path / "repo", tmp_path / "folder"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    keep = {"workspace": {"include": [".git/config", ".env.example"]}}

    plan_of(manifest_factory, tmp_path, keep, cwd=repo)
    in_repo = capsys.readouterr().err
    plan_of(manifest_factory, tmp_path, keep, cwd=folder)  # a plain folder: the include keeps its credentials

    assert "bottles.dev.workspace.include: '.git/config' keeps nothing here" in in_repo
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("egress", [
    {"allow": ["chat.example"], "websockets": ["other.example"]},
    {"allow": ["one.cdn.example"], "websockets": ["*.cdn.example"]},  # the pattern stands for more than is allowed
])
def test_a_websocket_host_off_the_allow_list_is_refused_at_its_field(manifest_factory, tmp_path, egress):
    from bottle_core.errors import ManifestError

    with pytest.raises(ManifestError) as caught:
        plan_of(manifest_factory, tmp_path, {"egress": egress})

    assert caught.value.field == "bottles.dev.egress.websockets[0]"
    assert "is not on the allow-list" in caught.value.render() and "egress.allow" in caught.value.render()


@pytest.mark.parametrize("egress", [
    {"allow": ["chat.example"], "websockets": ["chat.example"]},
    {"allow": ["*.cdn.example"], "websockets": ["*.cdn.example", "live.cdn.example"]},
    {"allow": [], "websockets": ["api.anthropic.com"]},  # the model host is always allowed
])
def test_websocket_hosts_on_the_allow_list_are_planned(manifest_factory, tmp_path, monkeypatch, egress):
    monkeypatch.delenv("BOTTLE_MODEL_HOST", raising=False)
    plan = plan_of(manifest_factory, tmp_path, {"egress": egress})

    assert plan.egress.websockets == egress["websockets"]


def test_a_secret_bound_to_a_host_off_the_allow_list_is_warned_about(manifest_factory, tmp_path, capsys):
    secret = {"from_env": "GH_TOKEN", "hosts": ["api.github.example", "uploads.github.example"]}

    plan_of(manifest_factory, tmp_path, {"egress": {"allow": ["api.github.example"]}, "secrets": {"GH_TOKEN": secret}})

    assert capsys.readouterr().err == (
        "bottle: warning: bottles.dev.secrets.GH_TOKEN.hosts[1]: 'uploads.github.example' is not on the allow-list, "
        "so the secret is never sent there (add it to egress.allow)\n")
