"""The agent's work comes home through the git gate: real git on the host, in the agent and in the bundle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from .bottles import bottle_cli, write_manifest

pytestmark = pytest.mark.integration

ZERO = "0" * 40


def git(repo: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "Host User", "GIT_AUTHOR_EMAIL": "host@example.test",
                              "GIT_COMMITTER_NAME": "Host User", "GIT_COMMITTER_EMAIL": "host@example.test"})
    if check and out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {out.stderr}")
    return out.stdout.strip()


def make_repo(path: Path) -> Path:
    """A host repository on main with two commits, a staged and an unstaged change, an untracked and an ignored file."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Host User")
    git(path, "config", "user.email", "host@example.test")
    (path / "README.md").write_text("hello\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "first")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('v1')\n")
    (path / "staged.txt").write_text("staged\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "second")
    (path / "src" / "app.py").write_text("print('v2, not committed')\n")  # unstaged change
    (path / "staged.txt").write_text("staged, changed\n")
    git(path, "add", "staged.txt")  # staged change
    (path / "notes.txt").write_text("untracked\n")
    (path / "debug.log").write_text("ignored\n")
    return path


def snapshot(repo: Path) -> dict:
    """What must not change on the host: HEAD, the index file byte for byte, and every working-tree file."""
    files = {}
    for path in sorted(repo.rglob("*")):
        if ".git" in path.relative_to(repo).parts or not path.is_file():
            continue
        files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"head": (repo / ".git" / "HEAD").read_text(), "main": git(repo, "rev-parse", "main"),
            "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(), "files": files,
            "status": git(repo, "status", "--porcelain")}


def git_records(agent: str) -> list[dict]:
    out = bottle_cli("logs", agent, "--git", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "manifest"
    folder.mkdir()
    return folder


def test_home_round_trip(tmp_path, manifest_dir):
    repo = make_repo(tmp_path / "project")
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {"homer": {"bottle": "dev"}}})
    before = snapshot(repo)
    script = (
        "set -e; git rev-parse --abbrev-ref HEAD; git log --format=%H | tr '\\n' ' '; echo;"
        " git status --porcelain | tr '\\n' '|'; echo; cat src/app.py; test ! -e debug.log;"
        " git config --get remote.origin.url;"
        " git checkout -q -b bottle/homer/work; git add -A; git commit -qm 'agent work';"
        " git push origin bottle/homer/work 2>&1; git rev-parse HEAD"
    )
    out = bottle_cli("exec", "-m", str(manifest), "--copy-cwd", "homer", "--", "sh", "-c", script, cwd=repo)
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert out.returncode == 0, stdout + stderr
    lines = stdout.splitlines()
    assert lines[0] == "main"
    assert lines[1].split() == git(repo, "log", "--format=%H").split()
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert lines[2] == status.replace("\n", "|")
    assert lines[3] == "print('v2, not committed')"
    assert lines[4].startswith("http://") and lines[4].endswith("/origin.git")
    assert "bottle-gate: pushed to the upstream of origin" in stdout
    pushed = lines[-1]
    # The branch and commit are home; the host's checkout, index and working tree are as they were.
    assert git(repo, "rev-parse", "refs/heads/bottle/homer/work") == pushed
    assert git(repo, "log", "-1", "--format=%s", pushed) == "agent work"
    assert git(repo, "show", f"{pushed}:notes.txt") == "untracked"
    assert snapshot(repo) == before
    assert "bottle: git: pushed bottle/homer/work ->" in stderr
    records = git_records("homer")
    assert [(r["decision"], r["refs"][0]["ref"], r["refs"][0]["new"]) for r in records] == [
        ("pushed", "refs/heads/bottle/homer/work", pushed)]
