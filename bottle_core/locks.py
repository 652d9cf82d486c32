"""Host-side locks between bottle commands running at once, kept in a private directory.

Not in ``/tmp``: anyone can write there, so another user could plant the
lock file first (or a symlink in its place) and hold up or redirect every
launch. The directory is the user's own (``<state root>/locks``, mode 0700),
checked to be so, and the lock file is opened without following symlinks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import BottleRuntimeError
from .plan import state_root


def lock_dir() -> Path:
    """Where the locks live: ``$XDG_STATE_HOME/bottle/locks`` (default ``~/.local/state/bottle/locks``)."""
    return state_root() / "locks"


def _private_dir(path: Path) -> int:
    """An open descriptor of ``path``, made if missing; refused unless it is a directory of ours alone."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BottleRuntimeError(f"lock directory {path}: {exc.strerror} (is it a symlink?)",
                                 hint=f"remove {path}; bottle makes it again") from None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        raise BottleRuntimeError(
            f"lock directory {path} is not private (owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o})",
            hint=f"it must belong to you with mode 700: chmod 700 {path}, or remove it")
    return fd


@contextlib.contextmanager
def host_lock(name: str) -> Iterator[None]:
    """Hold the exclusive lock ``name`` (a file in :func:`lock_dir`) for the duration of the block."""
    directory = lock_dir()
    dir_fd = _private_dir(directory)
    try:
        try:
            fd = os.open(f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise BottleRuntimeError(f"lock file {directory / (name + '.lock')}: {exc.strerror}",
                                     hint="remove it; bottle makes it again") from None
    finally:
        os.close(dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
