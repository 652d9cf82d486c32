"""Files written whole: a reader (another run, a keeper, a second doctor) sees the old content or the new."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, data: str | bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a fresh file beside it, then rename it into place.

    The staged file is made by :func:`tempfile.mkstemp` (created exclusively, so a
    planted symlink is never followed) with ``mode``; it is removed if the write fails.
    """
    path = Path(path)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
