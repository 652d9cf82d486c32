"""What the copy of the user's directory leaves behind: ``.env*`` files and credentials in ``.git/config``.

Two pieces any way of making the workspace can use (a tar copy, a clone):
:class:`WorkspaceFilter` says which relative paths stay out, and
:func:`scrub_git_config` takes credentials out of a ``.git/config`` text
(user and password in remote URLs, ``http.extraheader`` lines that carry an
``Authorization`` header).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

#: Left out unless the manifest's ``workspace.include`` names them.
DEFAULT_EXCLUDE = (".env*",)
GIT_CONFIG = ".git/config"

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^/@\s\"']+)@", re.I)
_EXTRAHEADER = re.compile(r"^\s*extraheader\s*=.*$", re.I | re.M)


def _matches(pattern: str, path: str) -> bool:
    """gitignore-like: a pattern with no '/' matches a name at any depth; one with '/' the path from the top."""
    pattern = pattern.strip("/")
    if "/" in pattern:
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


@dataclass(frozen=True)
class WorkspaceFilter:
    """Which relative paths the workspace copy leaves out: the defaults and ``exclude``, less ``include``."""

    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    defaults: tuple[str, ...] = field(default=DEFAULT_EXCLUDE)

    @classmethod
    def of(cls, workspace) -> WorkspaceFilter:
        """The filter of a plan's (or manifest's) ``workspace`` settings."""
        return cls(tuple(workspace.exclude), tuple(workspace.include))

    def keeps(self, path: str) -> bool:
        """True when the relative path ``path`` (posix, no leading './') is copied in."""
        path = path.strip("/")
        if path in ("", "."):
            return True
        if any(_matches(pattern, path) for pattern in self.include):
            return True
        return not any(_matches(pattern, path) for pattern in (*self.defaults, *self.exclude))

    def scrubs(self, config: str) -> bool:
        """Credentials leave a repository's config (``.git/config``) unless the manifest includes it by name."""
        return not any(pattern.strip("/") == config for pattern in self.include)


def scrub_git_config(text: str) -> tuple[str, int]:
    """``.git/config`` without credentials, and how many were removed.

    ``https://user:token@host/repo`` becomes ``https://host/repo`` (an ssh
    ``git@host:repo`` address names a user, not a secret, and is kept);
    ``extraheader`` lines (CI systems put ``AUTHORIZATION: basic ...`` there)
    are dropped.
    """
    count = 0

    def strip(match: re.Match) -> str:
        nonlocal count
        if match.group("scheme").lower().startswith("ssh"):
            return match.group()
        count += 1
        return match.group("scheme")

    text = _URL_USERINFO.sub(strip, text)
    text, headers = _EXTRAHEADER.subn("", text)
    return text, count + headers


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


@dataclass
class LeftOut:
    """What one workspace copy left behind, for the lines said at launch (file names made visible there)."""

    paths: list[str] = field(default_factory=list)
    credentials: int = 0
    #: Left-out paths that commits of the repository still hold: the agent can read them with git.
    in_history: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``bottle: workspace: left out .env, api/.env.local and 1 credential in .git/config (...)``.

        A second line warns about left-out paths that the history still holds.
        """
        from .terminal import visible

        parts = []
        if self.paths:
            parts.append(_some(self.paths))
        if self.credentials:
            parts.append(f"{self.credentials} credential{'s' if self.credentials > 1 else ''} in git config")
        if not parts:
            text = "bottle: workspace: copied in whole (.env* files and .git/config credentials would be left out)"
        else:
            text = (f"bottle: workspace: left out {' and '.join(parts)} "
                    "(workspace.include in the manifest copies them)")
        if self.in_history:
            text += (f"\nbottle: warning: workspace: {_some(self.in_history)} left out but in this repository's "
                     "history: the agent can read them with git (git log --all -- PATH). History cannot be hidden "
                     "while the git gate lends the repository's objects; remove them from history (git filter-repo) "
                     "or run with --no-copy-cwd")
        return "\n".join(visible(line) for line in text.split("\n"))


def recorded(filter_: WorkspaceFilter, left: LeftOut):
    """``filter_.keeps``, noting each path it leaves out in ``left`` (once, however often asked)."""
    seen: set[str] = set()

    def keep(path: str) -> bool:
        kept = filter_.keeps(path)
        if not kept and path not in seen:
            seen.add(path)
            left.paths.append(path)
        return kept
    return keep


def history_pathspecs(filter_: WorkspaceFilter) -> list[str]:
    """git pathspecs matching what ``filter_`` leaves out (its includes are checked afterwards, with ``keeps``)."""
    specs = []
    for pattern in (*filter_.defaults, *filter_.exclude):
        pattern = pattern.strip("/")
        top = pattern if "/" in pattern else f"**/{pattern}"
        specs += [f":(glob){top}", f":(glob){top}/**"]
    return specs


def is_git_config(path: str, top) -> bool:
    """A repository's config at any depth below ``top`` (``.git/config``, ``sub/.git/config``,
    ``.git/modules/m/config``, ``.git/worktrees/w/config.worktree``, or the config of a git dir of any other
    name, one ``--separate-git-dir`` made): where remote URLs and headers keep credentials."""
    parts = path.split("/")
    if parts[-1] not in ("config", "config.worktree"):
        return False
    if ".git" in parts[:-1]:
        return True
    folder = top.joinpath(*parts[:-1])
    return (folder / "HEAD").is_file() and ((folder / "objects").is_dir() or (folder / "commondir").is_file())


def workspace_tar(folder, filter_: WorkspaceFilter, uid: int):
    """A tar stream of ``folder`` as the workspace copy takes it, and what it left out.

    Every repository config inside it, nested ones included, is copied scrubbed
    of credentials (unless ``workspace.include`` names it): a folder that is no
    repository itself can hold several.
    """
    from pathlib import Path

    from .sandbox import tar_of_folders

    top = Path(folder).resolve()
    left = LeftOut()
    keeps = recorded(filter_, left)
    scrubbed: dict[str, bytes] = {}  # filled during the walk, added by tar_of_folders after the folder's own files

    def keep(path: str) -> bool:
        if not keeps(path):
            return False
        if not is_git_config(path, top) or not filter_.scrubs(path):
            return True
        config = top / path
        # Read only inside the folder: a link out (to ~/.kube/config, say) is copied as the link it is.
        if config.is_symlink() or not config.resolve().is_relative_to(top) or not config.is_file():
            return True
        text, found = scrub_git_config(config.read_text(encoding="utf-8", errors="surrogateescape"))
        left.credentials += found
        scrubbed[path] = text.encode("utf-8", "surrogateescape")
        return False

    stream = tar_of_folders([(".", top)], uid=uid, keep=keep, extra=scrubbed)
    return stream, left
