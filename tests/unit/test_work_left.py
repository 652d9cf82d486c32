"""What a run names as work left in its bottle: the look's answer read, and judged against the host's repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

from bottle_core.hostrepo import find_repository
from bottle_core.workspace import WorkspaceFilter
from bottle_core.work_left import WorkLeft, judge, parse, status_entries

SEP = b"--bottle-status--\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=u", "-c", "user.email=u@example.test", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def host_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / "a.txt").write_text("a, changed on the host\n")
    return repo


def plan_for(repo: Path) -> SimpleNamespace:
    return SimpleNamespace(git_gate=SimpleNamespace(remotes={}), workspace=WorkspaceFilter(), cwd=str(repo))


def test_status_entries_read_renames_as_one_entry_and_skip_what_is_not_an_entry():
    answer = b" M a.txt\0R  new.txt\0old.txt\0?? dir/b c.txt\0junk\0"
    assert status_entries(answer) == [(" M", "a.txt"), ("R ", "new.txt"), ("??", "dir/b c.txt")]


def test_parse_keeps_only_well_formed_branches_and_nothing_without_the_separator():
    sha = "a" * 40
    branches, entries = parse(f"{sha} feature\nnot-a-sha main\n{'b' * 40}\n".encode() + SEP + b"?? x\0")
    assert branches == [("feature", sha)] and entries == [("??", "x")]
    assert parse(f"{sha} feature\n".encode()) == ([], [])


def test_commits_the_host_lacks_and_paths_the_host_does_not_list_are_work_left(tmp_path):
    repo = host_repo(tmp_path)
    came_in = git(repo, "rev-parse", "HEAD")
    made_in_bottle = "c" * 40  # a commit no host store holds
    answer = (f"{came_in} main\n{made_in_bottle} feature\n".encode() + SEP
              + b" M a.txt\0?? scratch.txt\0D  .env\0")
    left = judge(plan_for(repo), find_repository(repo), answer)
    # main's tip came from the host; a.txt's change is the host's own; .env was never copied in.
    assert left.branches == [("feature", made_in_bottle)]
    assert left.paths == ["scratch.txt"]
    line = left.line()
    assert line.startswith("work left in the bottle, removed with it: commits on 1 branch not pushed: feature (ccccccc)")
    assert "1 path changed and not committed: scratch.txt" in line


def test_looking_writes_nothing_into_the_host_repository(tmp_path):
    repo = host_repo(tmp_path)
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "b.txt")
    git(repo, "commit", "-qm", "two")
    os.utime(repo / "b.txt", (1, 1))  # same content, new stat: a plain ``git status`` would rewrite the index
    index = (repo / ".git" / "index").read_bytes()
    judge(plan_for(repo), find_repository(repo), SEP + b"?? x\0")
    assert (repo / ".git" / "index").read_bytes() == index


def test_nothing_left_says_nothing_and_long_lists_are_cut():
    assert WorkLeft().line() is None
    many = WorkLeft(paths=[f"f{i}" for i in range(5)]).line()
    assert "5 paths changed and not committed: f0, f1, f2 and 2 more" in many
