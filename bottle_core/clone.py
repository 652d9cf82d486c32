"""The workspace as a real clone of the user's repository, as one tar stream for the sandbox.

History, refs, index and working tree as they are on the host, with a fresh
minimal git config: none of the host's remotes, credential helpers, hooks or
includes travel (see :func:`clone_config`).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import BottleRuntimeError
from .hostrepo import Repository, _git
from .sandbox import add_parents

CLONED_FROM_COMMON = ("objects", "refs", "packed-refs", "shallow", "info/exclude")
CLONED_FROM_WORKTREE = ("HEAD", "index")

def clone_config(repo: Repository) -> bytes:
    """A fresh ``.git/config`` for the agent's clone: the format the objects need and nothing of the host's config.

    The host's config (remotes with their URLs, credential helpers, hooks,
    includes) never enters the bottle; ``provision_git`` adds the gate's remotes.
    """
    version = _git(["config", "--get", "core.repositoryformatversion"], repo.git_dir).stdout.strip() or "0"
    object_format = _git(["config", "--get", "extensions.objectformat"], repo.git_dir).stdout.strip()
    text = f"[core]\n\trepositoryformatversion = {version}\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"
    if object_format:
        text += f"[extensions]\n\tobjectformat = {object_format}\n"
    return text.encode()


def working_files(repo: Repository, include_ignored: bool) -> list[str]:
    """Paths (relative to the top) of the working tree as it is: tracked files that exist, and untracked ones.

    Ignored files come too only with ``include_ignored``.
    """
    args = ["ls-files", "-z", "--cached", "--others"]
    if not include_ignored:
        args.append("--exclude-standard")
    out = subprocess.run(["git", "-C", str(repo.top), *args], capture_output=True)
    if out.returncode != 0:
        raise BottleRuntimeError(f"git ls-files in {repo.top} failed: {out.stderr.decode(errors='replace').strip()}")
    seen, paths = set(), []
    for raw in out.stdout.split(b"\0"):
        name = os.fsdecode(raw)
        if name and name not in seen and os.path.lexists(repo.top / name):  # type: ignore[operator]
            seen.add(name)
            paths.append(name)
    return paths


def index_entries(repo: Repository) -> list[str]:
    """Paths the repository's index holds (staged files, whether or not they are in the working tree)."""
    out = subprocess.run(["git", "-C", str(repo.top), "ls-files", "-z", "--cached"], capture_output=True)
    if out.returncode != 0:
        raise BottleRuntimeError(f"git ls-files in {repo.top} failed: {out.stderr.decode(errors='replace').strip()}")
    return sorted({os.fsdecode(raw) for raw in out.stdout.split(b"\0") if raw})


def filtered_index(repo: Repository, drop: list[str], folder: Path) -> Path:
    """A copy of the repository's index without the entries ``drop``, written in ``folder`` (never in the repository).

    ``git update-index --force-remove`` on a copy (``GIT_INDEX_FILE``): a
    dropped file is then neither staged nor readable as ``git show :PATH``;
    the copy is whole (never split), so no shared index is needed beside it.
    """
    index = folder / "index"
    shutil.copyfile(repo.git_dir / "index", index)
    out = subprocess.run(["git", "-C", str(repo.top), "-c", "core.splitIndex=false", "update-index",
                          "--no-split-index", "-z", "--force-remove", "--stdin"],
                         input=b"".join(os.fsencode(path) + b"\0" for path in drop), capture_output=True,
                         env={**os.environ, "GIT_INDEX_FILE": str(index)})
    if out.returncode != 0:
        raise BottleRuntimeError(f"could not leave {', '.join(drop[:3])} out of the index of {repo.top}: "
                                 f"{out.stderr.decode(errors='replace').strip()}")
    return index


def in_history(repo: Repository, pathspecs: list[str], keep: Callable[[str], bool]) -> list[str]:
    """Paths the workspace filter leaves out (``keep`` says no) that some commit of the repository holds."""
    if not pathspecs:
        return []
    out = subprocess.run(["git", "-C", str(repo.top), "log", "--all", "--format=", "--name-only", "--no-renames",
                          "-z", "--", *pathspecs], capture_output=True)
    if out.returncode != 0:  # an empty repository has no history to look at
        return []
    return sorted({name for raw in out.stdout.split(b"\0") if (name := os.fsdecode(raw.strip(b"\n")))
                   and not keep(name)})


def clone_tar(repo: Repository, *, uid: int, include_ignored: bool,
              keep: Callable[[str], bool] = lambda path: True) -> BinaryIO:
    """One tar stream of the clone: the working tree as it is, and a ``.git`` holding the history and the index.

    ``keep(path)`` says which files come in (the workspace filter: no
    ``.env*`` files by default), in the working tree and in the index alike;
    the history comes whole (see :func:`in_history`).
    """
    if (repo.common_dir / "objects" / "info" / "alternates").exists():
        raise BottleRuntimeError(f"{repo.common_dir} borrows objects from another repository (objects/info/alternates)",
                                 hint="run `git repack -a -d` there once so it holds all its objects, or use "
                                      "--no-copy-cwd")

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        return info

    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    scratch = tempfile.TemporaryDirectory(prefix="bottle-index-")
    with scratch, tarfile.open(fileobj=spool, mode="w") as tar:
        add_parents(tar, ".git", uid)
        config = tarfile.TarInfo(".git/config")
        data = clone_config(repo)
        config.size, config.mode, config.uid, config.gid = len(data), 0o644, uid, uid
        tar.addfile(config, fileobj=_reader(data))
        has_index = (repo.git_dir / "index").is_file()
        drop = [path for path in index_entries(repo) if not keep(path)] if has_index else []
        if drop:
            tar.add(filtered_index(repo, drop, Path(scratch.name)), arcname=".git/index", filter=owned)
        for part in CLONED_FROM_WORKTREE:
            if not (drop and part == "index"):
                _add_git_part(tar, repo.git_dir, part, owned, uid)
        for name in sorted(os.listdir(repo.git_dir)):
            if name.startswith("sharedindex.") and not drop:  # a split index keeps half of itself here
                _add_git_part(tar, repo.git_dir, name, owned, uid)
        for part in CLONED_FROM_COMMON:
            if part == "refs":
                _add_refs(tar, repo.common_dir, owned)
            elif part == "packed-refs":
                _add_packed_refs(tar, repo.common_dir, uid)
            else:
                _add_git_part(tar, repo.common_dir, part, owned, uid)
        for name in working_files(repo, include_ignored):
            if name == ".git" or name.startswith(".git/") or not keep(name):
                continue
            tar.add(repo.top / name, arcname=name, recursive=False, filter=owned)  # type: ignore[operator]
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _reader(data: bytes):
    import io

    return io.BytesIO(data)


def _add_git_part(tar: tarfile.TarFile, base: Path, part: str, owned, uid: int) -> None:
    source = base / part
    if source.exists():
        if "/" in part:
            folder = tarfile.TarInfo(posixpath.join(".git", posixpath.dirname(part)))
            folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o755, uid, uid
            tar.addfile(folder)
        tar.add(source, arcname=posixpath.join(".git", part), filter=owned)


def _add_refs(tar: tarfile.TarFile, common: Path, owned) -> None:
    """Branches and tags (and other shared refs), without the host's remote-tracking refs: origin is the gate now."""
    refs = common / "refs"
    if not refs.is_dir():
        return
    tar.add(refs, arcname=".git/refs", recursive=False, filter=owned)
    for entry in sorted(refs.iterdir()):
        if entry.name == "remotes":
            continue
        tar.add(entry, arcname=f".git/refs/{entry.name}", filter=owned)


def _add_packed_refs(tar: tarfile.TarFile, common: Path, uid: int) -> None:
    source = common / "packed-refs"
    if not source.is_file():
        return
    kept, skipping = [], False
    for line in source.read_bytes().splitlines(keepends=True):
        if line.startswith(b"^"):  # the peeled value of the ref just before
            if not skipping:
                kept.append(line)
            continue
        skipping = b" refs/remotes/" in line
        if not skipping:
            kept.append(line)
    data = b"".join(kept)
    info = tarfile.TarInfo(".git/packed-refs")
    info.size, info.mode, info.uid, info.gid = len(data), 0o644, uid, uid
    tar.addfile(info, fileobj=_reader(data))
