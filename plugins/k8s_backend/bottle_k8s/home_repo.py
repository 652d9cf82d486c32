"""The user's repository's side of a cluster's way home: the seed lent to the bundle pod, and landing what comes back.

A path remote (the user's own repository, or a declared ``url = "../path"``)
cannot be mounted into a pod. Instead the bundle pod is lent a *seed*: a
bare copy of the repository's branches and tags (as ``git fetch origin`` in
a bottle sees them on docker), its HEAD and its worktrees' HEADs, so the
gate's policy runs unchanged against real history. What the gate accepted
comes back as a pack stream and *lands* here: its objects checked by git's
``index-pack --strict`` (fsck, and every link present), and only the refs
that passed the host's own check (:func:`refusal`) updated, each with a compare-and-swap on the value it
has now. Nothing else of the repository is written: no working tree, index,
HEAD, FETCH_HEAD, config or hook, and none of its hooks run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bottle_core.bundle.image.git_gate_hook import checked_out, ref_refusal
from bottle_core.errors import BottleRuntimeError, UsageError

ZERO = "0" * 40
#: What a bundle pod's listing of a ref must look like: 40 hex digits, a space, the name.
SHA_DIGITS = frozenset("0123456789abcdef")


def git(git_dir: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """git on ``git_dir`` alone: no hooks, no worktree, nothing of the caller's GIT_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return subprocess.run(["git", f"--git-dir={git_dir}", "-c", "core.hooksPath=/dev/null", *args],
                          input=stdin, capture_output=True, env=env, cwd=git_dir)


def _out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode("utf-8", "replace").strip()


def _err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode("utf-8", "replace").strip() or f"git exited with {result.returncode}"


def is_sha(value: str) -> bool:
    return len(value) == 40 and set(value) <= SHA_DIGITS


def refs_of(git_dir: Path) -> dict[str, str]:
    """The branches and tags of ``git_dir``: the refs a bottle's ``git fetch origin`` sees."""
    listed = git(git_dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags")
    if listed.returncode != 0:
        raise BottleRuntimeError(f"cannot list the refs of {git_dir}: {_err(listed)}")
    return parse_listing(_out(listed))


def parse_listing(text: str) -> dict[str, str]:
    """``sha refname`` lines as a mapping; a line of any other shape is dropped (its ref is then not offered)."""
    refs = {}
    for line in text.splitlines():
        sha, _, ref = line.partition(" ")
        if is_sha(sha) and ref and " " not in ref:
            refs[ref] = sha
    return refs


def refuse_unseedable(git_dir: Path, name: str) -> None:
    """What a seed cannot be made of, said before anything starts: a shallow or partial clone."""
    if _out(git(git_dir, "rev-parse", "--is-shallow-repository")) == "true":
        raise UsageError(f"git remote {name}: {git_dir} is a shallow clone, which cannot be lent to a cluster's "
                         "bundle pod",
                         hint=f"run `git -C {git_dir} fetch --unshallow` first, or use the docker backend")
    if _out(git(git_dir, "config", "--get", "extensions.partialClone")):
        raise UsageError(f"git remote {name}: {git_dir} is a partial clone (objects missing), which cannot be lent "
                         "to a cluster's bundle pod",
                         hint=f"fetch its missing objects (`git -C {git_dir} fetch --refetch`), "
                              "or use the docker backend")


def seed(git_dir: Path, into: Path) -> dict[str, str]:
    """Make ``into`` a bare repository with ``git_dir``'s branches, tags, HEAD and worktrees' HEADs; its refs.

    The HEADs are what the gate's checked-out-branch rule reads; the objects
    are copied by git's own fetch from the repository (which only reads it).
    """
    made = subprocess.run(["git", "init", "--bare", "-q", str(into)], capture_output=True)
    if made.returncode != 0:
        raise BottleRuntimeError(f"cannot make a seed repository: {_err(made)}")
    fetched = git(into, "fetch", "-q", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance", str(git_dir),
                  "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    if fetched.returncode != 0:
        raise BottleRuntimeError(f"cannot copy the branches and tags of {git_dir} for the cluster: {_err(fetched)}")
    for head, target in _heads(git_dir).items():
        path = into / head
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(target + "\n", encoding="utf-8")
    return refs_of(into)


def _heads(git_dir: Path) -> dict[str, str]:
    """``HEAD`` and ``worktrees/<id>/HEAD`` of ``git_dir`` when they name a branch (relative path -> ``ref: ...``);
    a detached ``HEAD`` as its commit (a clone through the gate then checks out none of the branches)."""
    heads = {}
    for path in [git_dir / "HEAD", *sorted((git_dir / "worktrees").glob("*/HEAD"))]:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text.startswith("ref: refs/") and "\n" not in text or path == git_dir / "HEAD" and is_sha(text):
            heads[str(path.relative_to(git_dir))] = text
    return heads


# -- the host's own check ---------------------------------------------------------------------------------


def valid_ref(ref: str) -> bool:
    """A full ref name under ``refs/`` that git accepts (``git check-ref-format``)."""
    if not ref.startswith("refs/"):
        return False
    return subprocess.run(["git", "check-ref-format", ref], capture_output=True).returncode == 0


def refusal(ref: str, old: str, new: str, current: str, remote: Mapping, checked: set[str],
            ancestor: Callable[[str, str], bool], deny_non_fast_forwards: bool = False) -> tuple[str, str] | None:
    """The first host rule an update of ``ref`` from ``old`` (what the host had when it was lent) to ``new`` breaks.

    ``current`` is the ref's value in the user's repository now, ``checked``
    the branches checked out there (or in any of its worktrees), ``remote``
    the plan's remote (``push_allow``, ``protected``, ``bare``). The rules are
    the gate's, checked again here because the bundle pod's word is not
    trusted; and a ref that moved on the host meanwhile is updated only when
    the bottle's value contains the host's (never clobbered).
    """
    if not valid_ref(ref):
        return "ref-name", f"{ref!r} is not a ref name under refs/: nothing outside refs is ever written"
    if found := ref_refusal(ref, old, new, remote, checked if not remote.get("bare", True) else set(), ancestor):
        return found
    if current != old and not (current != ZERO and new != ZERO and ancestor(current, new)):
        host = current[:12] if current != ZERO else "deleted"
        return "moved-on-host", (f"{ref} moved on the host since the bottle started (now {host}): not overwritten"
                                 + (f"; the bottle's {new[:12]} is in the repository: "
                                    f"`git branch NAME {new[:12]}` keeps it" if new != ZERO else ""))
    if deny_non_fast_forwards and current != ZERO and new != ZERO and not ancestor(current, new):
        return "receive.denyNonFastForwards", f"{ref}: the host repository refuses non-fast-forward updates"
    return None


# -- landing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landed:
    """What became of one ref: ``home`` (updated), ``same`` (the host already had it), or ``refused``."""

    ref: str
    old: str
    new: str
    decision: str
    rule: str | None = None
    reason: str | None = None


def has_object(git_dir: Path, sha: str) -> bool:
    return git(git_dir, "cat-file", "-e", sha).returncode == 0


def take_pack(git_dir: Path, pack: Path, wanted: dict[str, str]) -> dict[str, str]:
    """Bring the objects of ``pack`` (a pack stream from the pod) into ``git_dir``; for each ref of ``wanted``
    (ref -> the value the pod listed) that still cannot land, why.

    git's own ``index-pack --strict`` takes it: every object checked as
    ``fsck`` would, every object it links to present, or nothing is kept. No
    ref, FETCH_HEAD or anything else of the repository is written.
    """
    with open(pack, "rb") as stream:
        indexed = subprocess.run(["git", f"--git-dir={git_dir}", "index-pack", "--strict", "--fix-thin", "--stdin"],
                                 stdin=stream, capture_output=True, cwd=git_dir,
                                 env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")})
    if indexed.returncode != 0:
        return dict.fromkeys(wanted, f"git refused the objects from the pod: {_err(indexed)[-300:]}")
    return {ref: f"the objects from the pod do not hold {sha[:12]}" for ref, sha in wanted.items()
            if not has_object(git_dir, sha)}


def land(git_dir: Path, remote: Mapping, changes: dict[str, tuple[str, str]], pack: Path | None,
         slug: str, no_pack: str = "the pod sent no objects for it") -> list[Landed]:
    """Update in ``git_dir`` each ref of ``changes`` (ref -> (old, new)) that passes :func:`refusal`.

    ``pack`` holds the objects of the new values the repository lacks (``no_pack`` says why there is none).
    Each ref is its own compare-and-swap on the value read just before, so a
    ref that moves meanwhile is not overwritten either.
    """
    missing = {ref: new for ref, (_, new) in changes.items() if new != ZERO and not has_object(git_dir, new)}
    failed = take_pack(git_dir, pack, missing) if missing and pack is not None else dict.fromkeys(missing, no_pack)
    deny_ff = _out(git(git_dir, "config", "--bool", "--get", "receive.denyNonFastForwards")) == "true"
    checked = checked_out(git_dir)

    def ancestor(old: str, new: str) -> bool:
        return git(git_dir, "merge-base", "--is-ancestor", old, new).returncode == 0

    landed = []
    for ref, (old, new) in sorted(changes.items()):
        current = _current(git_dir, ref) if valid_ref(ref) else ZERO
        if current == new:
            landed.append(Landed(ref, old, new, "same"))
            continue
        if ref in failed:
            landed.append(Landed(ref, old, new, "refused", "objects", failed[ref]))
            continue
        broken = refusal(ref, old, new, current, remote, checked, ancestor, deny_ff) or _kind_refusal(git_dir, ref, new)
        if broken:
            landed.append(Landed(ref, old, new, "refused", *broken))
            continue
        argv = (["update-ref", "-d", ref, current] if new == ZERO
                else ["update-ref", "-m", f"bottle {slug}: home", ref, new, current])
        updated = git(git_dir, *argv)
        if updated.returncode != 0:
            landed.append(Landed(ref, old, new, "refused", "moved-on-host",
                                 f"{ref} changed on the host while it came home: not overwritten ({_err(updated)})"))
            continue
        landed.append(Landed(ref, old, new, "home"))
    return landed


def _current(git_dir: Path, ref: str) -> str:
    shown = git(git_dir, "rev-parse", "--verify", "-q", ref)
    value = _out(shown)
    return value if shown.returncode == 0 and is_sha(value) else ZERO


def _kind_refusal(git_dir: Path, ref: str, new: str) -> tuple[str, str] | None:
    """A branch names a commit (a tag may name any object): what else a pod offers for one is refused."""
    if new == ZERO or not ref.startswith("refs/heads/"):
        return None
    kind = _out(git(git_dir, "cat-file", "-t", new))
    if kind != "commit":
        return "ref-name", f"{ref} would name a {kind or 'missing object'}, not a commit"
    return None
