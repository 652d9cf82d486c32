"""The host's side of the way home from a cluster: its own ref check, and landing with real git (no cluster).

The bundle pod is played by a seed repository made here, changed the way a
compromised pod could change it; what lands in the user's repository is
checked as the user would (refs, HEAD, index, working tree).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from bottle_k8s import home_repo
from bottle_k8s.home_repo import ZERO, land, refusal

A, B, C = "a" * 40, "b" * 40, "c" * 40
REMOTE = {"push_allow": ["refs/heads/bottle/*", "refs/heads/release"], "protected": ["refs/heads/release"],
          "bare": False}
ENV = {"GIT_AUTHOR_NAME": "U", "GIT_AUTHOR_EMAIL": "u@x.test", "GIT_COMMITTER_NAME": "U",
       "GIT_COMMITTER_EMAIL": "u@x.test"}


def never(old: str, new: str) -> bool:
    return False


def always(old: str, new: str) -> bool:
    return True


def rule(*args, **kwargs) -> str | None:
    found = refusal(*args, **kwargs)
    return found[0] if found else None


# -- the rules --------------------------------------------------------------------------------------------


def test_an_allowed_new_branch_passes_and_its_neighbours_are_refused_by_name():
    assert rule("refs/heads/bottle/x", ZERO, A, ZERO, REMOTE, set(), never) is None
    assert rule("refs/heads/main", ZERO, A, ZERO, REMOTE, set(), never) == "push.allow"
    assert rule("refs/tags/v1", ZERO, A, ZERO, REMOTE, set(), never) == "push.allow"


@pytest.mark.parametrize("ref", ["HEAD", "config", "refs/heads/bottle/../../config", "refs/heads/bottle/x.lock",
                                 "refs/heads/bottle/a b", "refs/heads/bottle/x\n", "../refs/heads/bottle/x",
                                 "refs/heads/bottle/x..y"])
def test_nothing_outside_refs_or_not_a_ref_name_is_written(ref):
    permissive = {**REMOTE, "push_allow": ["*"]}
    assert rule(ref, ZERO, A, ZERO, permissive, set(), always) == "ref-name"


def test_a_protected_ref_is_neither_deleted_nor_forced_but_may_fast_forward():
    assert rule("refs/heads/release", A, ZERO, A, REMOTE, set(), always) == "push.protected"
    assert rule("refs/heads/release", A, B, A, REMOTE, set(), never) == "push.protected"
    assert rule("refs/heads/release", A, B, A, REMOTE, set(), always) is None


def test_the_checked_out_branch_of_a_repository_with_a_working_tree_is_never_updated():
    assert rule("refs/heads/bottle/x", A, B, A, REMOTE, {"refs/heads/bottle/x"}, always) == "checked-out-branch"
    # A bare repository has no checkout: its HEAD's branch is an ordinary one.
    assert rule("refs/heads/bottle/x", A, B, A, {**REMOTE, "bare": True}, {"refs/heads/bottle/x"}, always) is None


def test_a_ref_that_moved_on_the_host_is_not_clobbered_unless_the_bottle_built_on_it():
    said = refusal("refs/heads/bottle/x", A, B, C, REMOTE, set(), never)
    assert said[0] == "moved-on-host" and C[:12] in said[1] and B[:12] in said[1]
    assert rule("refs/heads/bottle/x", A, ZERO, C, REMOTE, set(), always) == "moved-on-host"  # no delete of C
    assert rule("refs/heads/bottle/x", A, B, ZERO, REMOTE, set(), always) == "moved-on-host"  # deleted on the host
    assert rule("refs/heads/bottle/x", A, B, C, REMOTE, set(), always) is None  # B contains C: a fast-forward


def test_a_host_that_denies_non_fast_forwards_keeps_that_rule():
    assert rule("refs/heads/bottle/x", A, B, A, REMOTE, set(), never, True) == "receive.denyNonFastForwards"
    assert rule("refs/heads/bottle/x", A, B, A, REMOTE, set(), never, False) is None


# -- landing with real git -----------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env={**os.environ, **ENV})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def untouched(repo: Path) -> dict:
    files = {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.relative_to(repo).parts}
    git_dir = repo / ".git"
    return {"HEAD": (git_dir / "HEAD").read_text(), "index": (git_dir / "index").read_bytes(), "files": files,
            "FETCH_HEAD": (git_dir / "FETCH_HEAD").exists(), "config": (git_dir / "config").read_text()}


@pytest.fixture
def user_repo(tmp_path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f.txt").write_text("one\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    git(repo, "branch", "bottle/old")
    git(repo, "branch", "release")
    git(repo, "worktree", "add", "-q", str(tmp_path / "side"), "-b", "bottle/side")
    (repo / "f.txt").write_text("uncommitted\n")
    git(repo, "add", "f.txt")
    (repo / "new.txt").write_text("untracked\n")
    return repo


def lent(user_repo: Path, tmp_path: Path) -> tuple[Path, dict]:
    seed = tmp_path / "seed"
    return seed, home_repo.seed(user_repo / ".git", seed)


def commit_in(seed: Path, parent: str, text: str) -> str:
    """A commit made in the seed (the pod's repository), as the gate or a compromised pod would leave it."""
    blob = subprocess.run(["git", "--git-dir", str(seed), "hash-object", "-w", "--stdin"], input=text, text=True,
                          capture_output=True, check=True).stdout.strip()
    tree = subprocess.run(["git", "--git-dir", str(seed), "mktree"], input=f"100644 blob {blob}\tf.txt\n", text=True,
                          capture_output=True, check=True).stdout.strip()
    return git(seed, "commit-tree", tree, "-p", parent, "-m", text)


def pack_of(seed: Path, refs: list[str], tmp_path: Path) -> Path:
    """The pack the pod sends for ``refs``: everything they reach (the pod could send any pack)."""
    path = tmp_path / "out.pack"
    made = subprocess.run(["git", "--git-dir", str(seed), "pack-objects", "--stdout", "--revs"],
                          input="".join(f"{ref}\n" for ref in refs).encode(), capture_output=True, check=True)
    path.write_bytes(made.stdout)
    return path


def test_a_detached_head_is_lent_as_its_commit(user_repo, tmp_path):
    git(user_repo, "checkout", "-q", "--detach")
    seed, refs = lent(user_repo, tmp_path)
    assert (seed / "HEAD").read_text().strip() == refs["refs/heads/main"]


def test_the_seed_holds_the_branches_tags_and_heads_the_gate_needs(user_repo, tmp_path):
    git(user_repo, "tag", "v1")
    seed, refs = lent(user_repo, tmp_path)
    assert refs == home_repo.refs_of(user_repo / ".git")
    assert set(refs) == {"refs/heads/main", "refs/heads/bottle/old", "refs/heads/bottle/side", "refs/heads/release",
                         "refs/tags/v1"}
    assert (seed / "HEAD").read_text().strip() == "ref: refs/heads/main"
    from bottle_core.bundle.image.git_gate_hook import checked_out

    assert checked_out(seed) == {"refs/heads/main", "refs/heads/bottle/side"}  # what the gate's rule reads


def test_accepted_work_lands_and_nothing_else_of_the_repository_changes(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    before = untouched(user_repo)
    work = commit_in(seed, refs["refs/heads/main"], "agent work\n")
    git(seed, "update-ref", "refs/heads/bottle/new", work)
    git(seed, "update-ref", "refs/heads/bottle/old", work)
    changes = {"refs/heads/bottle/new": (ZERO, work), "refs/heads/bottle/old": (refs["refs/heads/bottle/old"], work)}
    landed = land(user_repo / ".git", REMOTE, changes, pack_of(seed, list(changes), tmp_path), "s1")
    assert [(x.ref, x.decision) for x in landed] == [("refs/heads/bottle/new", "home"),
                                                     ("refs/heads/bottle/old", "home")]
    assert git(user_repo, "rev-parse", "bottle/new") == git(user_repo, "rev-parse", "bottle/old") == work
    assert git(user_repo, "show", f"{work}:f.txt") == "agent work"
    assert untouched(user_repo) == before


def test_a_compromised_pods_forbidden_refs_are_refused_by_name_and_change_nothing(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    main = refs["refs/heads/main"]
    evil = commit_in(seed, main, "evil\n")
    unrelated = git(seed, "commit-tree", git(seed, "rev-parse", "main^{tree}"), "-m", "rewritten")
    changes = {"refs/heads/main": (main, evil),                      # not allowed, and checked out
               "refs/heads/bottle/side": (main, evil),               # checked out in a worktree
               "refs/heads/release": (main, unrelated),              # protected: a force-update
               "refs/heads/bottle/fine": (ZERO, evil)}               # the benign one
    for ref, (_, new) in changes.items():
        git(seed, "update-ref", ref, new)
    before_refs = home_repo.refs_of(user_repo / ".git")
    before = untouched(user_repo)
    landed = {x.ref: x for x in land(user_repo / ".git", REMOTE, changes, pack_of(seed, list(changes), tmp_path),
                                     "s1")}
    assert {ref: (x.decision, x.rule) for ref, x in landed.items()} == {
        "refs/heads/main": ("refused", "push.allow"),
        "refs/heads/bottle/side": ("refused", "checked-out-branch"),
        "refs/heads/release": ("refused", "push.protected"),
        "refs/heads/bottle/fine": ("home", None)}
    after = home_repo.refs_of(user_repo / ".git")
    assert after == {**before_refs, "refs/heads/bottle/fine": evil}
    assert untouched(user_repo) == before


def test_a_pack_that_does_not_hold_the_listed_value_brings_nothing(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    one = commit_in(seed, refs["refs/heads/main"], "one\n")
    two = commit_in(seed, refs["refs/heads/main"], "two\n")
    git(seed, "update-ref", "refs/heads/bottle/x", two)
    landed = land(user_repo / ".git", REMOTE, {"refs/heads/bottle/x": (ZERO, one)},
                  pack_of(seed, ["refs/heads/bottle/x"], tmp_path), "s1")
    assert [(x.decision, x.rule) for x in landed] == [("refused", "objects")]
    assert "refs/heads/bottle/x" not in home_repo.refs_of(user_repo / ".git")


def test_a_branch_naming_something_other_than_a_commit_is_refused(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    tree = git(seed, "rev-parse", "main^{tree}")  # the host has it already: no bundle needed
    landed = land(user_repo / ".git", REMOTE, {"refs/heads/bottle/tree": (ZERO, tree)}, None, "s1")
    assert [(x.decision, x.rule) for x in landed] == [("refused", "ref-name")]


def test_a_ref_moved_on_the_host_meanwhile_is_kept_and_the_bottles_commit_is_named(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    old = refs["refs/heads/bottle/old"]
    work = commit_in(seed, old, "agent\n")
    git(seed, "update-ref", "refs/heads/bottle/old", work)
    host = git(user_repo, "commit-tree", git(user_repo, "rev-parse", "main^{tree}"), "-p", old, "-m", "host")
    git(user_repo, "update-ref", "refs/heads/bottle/old", host)
    landed = land(user_repo / ".git", REMOTE, {"refs/heads/bottle/old": (old, work)},
                  pack_of(seed, ["refs/heads/bottle/old"], tmp_path), "s1")
    assert [(x.decision, x.rule) for x in landed] == [("refused", "moved-on-host")]
    assert work[:12] in landed[0].reason
    assert git(user_repo, "rev-parse", "bottle/old") == host
    assert git(user_repo, "cat-file", "-t", work) == "commit"  # the bottle's work is there to keep by hand


def test_a_malformed_object_is_refused_by_git_before_any_ref_moves(user_repo, tmp_path):
    seed, refs = lent(user_repo, tmp_path)
    tree = git(seed, "rev-parse", "main^{tree}")
    bad = subprocess.run(["git", "--git-dir", str(seed), "hash-object", "-t", "commit", "--literally", "-w", "--stdin"],
                         input=f"tree {tree}\nparent {refs['refs/heads/main']}\nauthor A <a@b> 1700000000 +99999\n"
                               "committer A <a@b> 1700000000 +0000\n\nbad\n", text=True, capture_output=True,
                         check=True).stdout.strip()
    git(seed, "update-ref", "refs/heads/bottle/bad", bad)
    landed = land(user_repo / ".git", REMOTE, {"refs/heads/bottle/bad": (ZERO, bad)},
                  pack_of(seed, ["refs/heads/bottle/bad"], tmp_path), "s1")
    assert [(x.decision, x.rule) for x in landed] == [("refused", "objects")]
    assert "refs/heads/bottle/bad" not in home_repo.refs_of(user_repo / ".git")
    assert subprocess.run(["git", "-C", str(user_repo), "cat-file", "-e", bad]).returncode != 0
