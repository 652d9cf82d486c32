"""The user's git repositories on the host: the gate's path upstreams, and the workspace as a real clone.

Everything here only reads the host repository (``git rev-parse``,
``git ls-files``, ``git config --get``, and the files of its git directory);
nothing is ever written to it from this side.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import BottleRuntimeError, ManifestError
from .plan import GitGateRemote
from .sandbox import add_parents

#: Parts of a git directory the agent's clone gets; config, hooks and everything else stay behind.
CLONED_FROM_COMMON = ("objects", "refs", "packed-refs", "shallow", "info/exclude")
CLONED_FROM_WORKTREE = ("HEAD", "index")


@dataclass(frozen=True)
class Repository:
    """A host repository: its top folder (None when bare), its own git dir and the common one (shared by worktrees)."""

    top: Path | None
    git_dir: Path
    common_dir: Path

    @property
    def bare(self) -> bool:
        return self.top is None


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)


def find_repository(path: Path) -> Repository | None:
    """The repository ``path`` is in (or is), or None when it is in none (or git is not installed)."""
    if shutil.which("git") is None or not Path(path).is_dir():
        return None
    out = _git(["rev-parse", "--is-bare-repository", "--path-format=absolute", "--git-dir", "--git-common-dir"], path)
    if out.returncode != 0:
        return None
    bare, git_dir, common = out.stdout.splitlines()[:3]
    git_dir_path, common_path = Path(git_dir), Path(common).resolve()
    top = None
    if bare != "true":
        shown = _git(["rev-parse", "--show-toplevel"], path)
        if shown.returncode != 0:  # inside a git dir itself: no working tree here
            return None
        top = Path(shown.stdout.strip()).resolve()
    return Repository(top=top, git_dir=git_dir_path.resolve(), common_dir=common_path)


def _path_remote(repo: Repository, url: str, push) -> GitGateRemote:
    stat = repo.common_dir.stat()
    return GitGateRemote(url=url, kind="path", git_dir=str(repo.common_dir), bare=repo.bare, owner_uid=stat.st_uid,
                         owner_gid=stat.st_gid, push_allow=list(push.allow), protected=list(push.protected),
                         max_bytes=_bytes(push.max_size))


def gate_remote(remote, manifest, field: str) -> GitGateRemote:
    """A declared ``[bottles.NAME.git.REMOTE]`` entry resolved for the gate (a path must be a repository now)."""
    push = remote.push
    if remote.url.startswith("https://"):
        token_file = str(manifest.base_dir / Path(remote.token_file).expanduser()) if remote.token_file else None
        return GitGateRemote(url=remote.url, kind="https", push_allow=list(push.allow), protected=list(push.protected),
                             max_bytes=_bytes(push.max_size), token_env=remote.token_env, token_file=token_file,
                             token_user=remote.token_user)
    path = (manifest.base_dir / Path(remote.url).expanduser()).resolve()
    repo = find_repository(path)
    if repo is None or path not in (repo.top, repo.git_dir, repo.common_dir):
        raise ManifestError(manifest.source, f"{str(path)!r} is not a git repository", field=f"{field}.url",
                            hint="give the path of a repository on this machine (bare or not), or an https:// URL")
    return _path_remote(repo, remote.url, push)


def default_remote(repo: Repository) -> GitGateRemote:
    """``origin`` when the manifest declares no remote: the user's own repository, with the default policy."""
    from .manifest import PushPolicy

    return _path_remote(repo, str(repo.top or repo.common_dir), PushPolicy())


def author(cwd: Path) -> tuple[str | None, str | None]:
    """The host's git user.name and user.email as seen from ``cwd`` (None where unset)."""
    if shutil.which("git") is None:
        return None, None
    found = [_git(["config", "--get", key], cwd if Path(cwd).is_dir() else Path.home()) for key in ("user.name", "user.email")]
    return tuple(out.stdout.strip() or None if out.returncode == 0 else None for out in found)  # type: ignore[return-value]


def _bytes(size: str | int) -> int:
    from .manifest import memory_bytes

    return memory_bytes(size)


# -- the workspace as a real clone ----------------------------------------------------


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


def clone_tar(repo: Repository, *, uid: int, include_ignored: bool) -> BinaryIO:
    """One tar stream of the clone: the working tree as it is, and a ``.git`` holding the history and the index."""
    if (repo.common_dir / "objects" / "info" / "alternates").exists():
        raise BottleRuntimeError(f"{repo.common_dir} borrows objects from another repository (objects/info/alternates)",
                                 hint="run `git repack -a -d` there once so it holds all its objects, or use "
                                      "--no-copy-cwd")

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        return info

    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        add_parents(tar, ".git", uid)
        config = tarfile.TarInfo(".git/config")
        data = clone_config(repo)
        config.size, config.mode, config.uid, config.gid = len(data), 0o644, uid, uid
        tar.addfile(config, fileobj=_reader(data))
        for part in CLONED_FROM_WORKTREE:
            _add_git_part(tar, repo.git_dir, part, owned, uid)
        for name in sorted(os.listdir(repo.git_dir)):
            if name.startswith("sharedindex."):  # a split index keeps half of itself here
                _add_git_part(tar, repo.git_dir, name, owned, uid)
        for part in CLONED_FROM_COMMON:
            if part == "refs":
                _add_refs(tar, repo.common_dir, owned)
            elif part == "packed-refs":
                _add_packed_refs(tar, repo.common_dir, uid)
            else:
                _add_git_part(tar, repo.common_dir, part, owned, uid)
        for name in working_files(repo, include_ignored):
            if name == ".git" or name.startswith(".git/"):
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
