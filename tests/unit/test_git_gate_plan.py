"""The git gate's plan, the git log kind and the end-of-run summary."""

from __future__ import annotations

import json
import subprocess

import pytest

from bottle_core import logs
from bottle_core.bundle import contract
from bottle_core.errors import ManifestError
from bottle_core.manifest import Manifest


def manifest(tmp_path, git: dict) -> Manifest:
    return Manifest.from_json_obj({"bottles": {"dev": {"git": git}}, "agents": {"a": {"bottle": "dev"}}},
                                  base_dir=tmp_path)


@pytest.mark.parametrize("url", ["http://git.test/r.git", "https://user:pw@git.test/r.git", "git@git.test:r.git"])
def test_an_upstream_url_with_credentials_or_a_plain_scheme_is_refused(tmp_path, url):
    with pytest.raises(ManifestError) as caught:
        manifest(tmp_path, {"up": {"url": url}})
    assert caught.value.field == "bottles.dev.git.up" and "https://" in str(caught.value)


def test_a_token_is_for_https_only_and_a_path_must_be_a_repository(tmp_path):
    with pytest.raises(ManifestError, match="only for an https"):
        manifest(tmp_path, {"up": {"url": "../repo", "token_env": "T"}})
    from bottle_core.plan import git_gate_plan

    m = manifest(tmp_path, {"up": {"url": "missing"}})
    with pytest.raises(ManifestError) as caught:
        git_gate_plan(m, m.bottles["dev"], tmp_path)
    assert caught.value.field == "bottles.dev.git.up.url"


def test_the_cwd_repository_is_origin_by_default_and_mounted_as_its_git_dir(tmp_path):
    from bottle_core.plan import git_gate_plan

    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    m = Manifest.from_json_obj({"bottles": {"dev": {}}, "agents": {"a": {"bottle": "dev"}}}, base_dir=tmp_path)
    gate = git_gate_plan(m, m.bottles["dev"], tmp_path / "repo")
    origin = gate.remotes["origin"]
    assert origin.kind == "path" and not origin.bare and origin.push_allow == ["refs/heads/bottle/*"]
    assert origin.git_dir == str((tmp_path / "repo" / ".git").resolve())
    assert gate.run_as == (origin.owner_uid, origin.owner_gid)
    assert git_gate_plan(m, m.bottles["dev"], tmp_path).remotes == {}  # not a repository: no default remote


def test_git_records_read_as_text_and_sum_up(tmp_path):
    (tmp_path / "logs").mkdir()
    records = [
        {"time": 1, "remote": "origin", "upstream": "/home/me/p", "decision": "pushed", "rule": None,
         "refs": [{"ref": "refs/heads/bottle/x", "old": "0" * 40, "new": "a" * 40}]},
        {"time": 2, "remote": "origin", "decision": "refused", "rule": "push.allow", "reason": "no",
         "refs": [{"ref": "refs/heads/main", "old": "b" * 40, "new": "c" * 40}]},
    ]
    (tmp_path / "logs" / "git.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "logs" / "egress.jsonl").write_text(
        json.dumps({"event": "egress", "time": 3, "host": "a.test", "decision": "allow"}) + "\n"
        + json.dumps({"event": "egress", "time": 4, "host": "b.test", "decision": "deny"}) + "\n")
    assert "rule push.allow" in logs.render(dict(records[1], log="git"), as_json=False)
    assert logs.summary(tmp_path) == ["git: pushed bottle/x -> /home/me/p; 1 push refused (push.allow)",
                                      "egress: 1 allowed, 1 blocked (b.test)"]


def test_the_gate_port_answers_and_path_upstreams_are_mounted(tmp_path):
    from bottle_core.plan import GitGatePlan, GitGateRemote

    remote = GitGateRemote(url="/r", kind="path", git_dir="/r/.git", bare=False, owner_uid=1, owner_gid=1,
                           push_allow=[], protected=[])

    class FakePlan:
        git_gate = GitGatePlan(remotes={"origin": remote, "web": GitGateRemote(url="https://x.test/r", push_allow=[],
                                                                               protected=[])})

    assert contract.bundle_mounts(FakePlan) == [contract.Mount("/r/.git", "/srv/upstream/origin", read_only=False)]
