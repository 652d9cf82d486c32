"""The user's git repositories on the host: the gate's path upstreams, and the workspace as a real clone.

Everything here only reads the host repository (``git rev-parse``,
``git ls-files``, ``git config --get``, and the files of its git directory);
nothing is ever written to it from this side.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import ManifestError

#: Parts of a git directory the agent's clone gets; config, hooks and everything else stay behind.


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


# The remotes below are the fields of a plan's ``GitGateRemote`` (the plan builds the model: no import cycle).


def _path_remote(repo: Repository, url: str, push) -> dict:
    stat = repo.common_dir.stat()
    return dict(url=url, kind="path", git_dir=str(repo.common_dir), bare=repo.bare, owner_uid=stat.st_uid,
                owner_gid=stat.st_gid, push_allow=list(push.allow), protected=list(push.protected),
                max_bytes=_bytes(push.max_size))


def gate_remote(remote, manifest, field: str) -> dict:
    """A declared ``[bottles.NAME.git.REMOTE]`` entry resolved for the gate (a path must be a repository now)."""
    push = remote.push
    if remote.url.startswith("https://"):
        token_file = str(manifest.base_dir / Path(remote.token_file).expanduser()) if remote.token_file else None
        return dict(url=remote.url, kind="https", push_allow=list(push.allow), protected=list(push.protected),
                    max_bytes=_bytes(push.max_size), token_env=remote.token_env, token_file=token_file,
                    token_user=remote.token_user)
    path = (manifest.base_dir / Path(remote.url).expanduser()).resolve()
    repo = find_repository(path)
    if repo is None or path not in (repo.top, repo.git_dir, repo.common_dir):
        raise ManifestError(manifest.source, f"{str(path)!r} is not a git repository", field=f"{field}.url",
                            hint="give the path of a repository on this machine (bare or not), or an https:// URL")
    return _path_remote(repo, remote.url, push)


def default_remote(repo: Repository) -> dict:
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
