"""The real `claude` binary for the agent image: a path the user gives, or fetched once with npm and cached."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bottle_core.errors import BottleRuntimeError

PACKAGES = {"x86_64": "@anthropic-ai/claude-code-linux-x64", "amd64": "@anthropic-ai/claude-code-linux-x64",
            "aarch64": "@anthropic-ai/claude-code-linux-arm64", "arm64": "@anthropic-ai/claude-code-linux-arm64"}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bottle" / "claude"


def locate() -> Path:
    """``$BOTTLE_CLAUDE_BINARY``, else the cached download (``$BOTTLE_CLAUDE_VERSION`` or latest), else fetch it."""
    given = os.environ.get("BOTTLE_CLAUDE_BINARY")
    if given:
        path = Path(given).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise BottleRuntimeError(f"BOTTLE_CLAUDE_BINARY={given} is not an executable file",
                                     hint="point it at a Linux claude binary, or unset it to fetch one")
        return path
    version = os.environ.get("BOTTLE_CLAUDE_VERSION") or "latest"
    cached = cache_root() / version / "claude"
    if cached.is_file():
        return cached
    return fetch(version, cached)


def fetch(version: str, target: Path) -> Path:
    """Fetch the native Linux package with ``npm pack`` on the host and keep its ``claude`` in the cache."""
    package = PACKAGES.get(platform.machine().lower())
    if package is None:
        raise BottleRuntimeError(f"no claude package for this machine ({platform.machine()})",
                                 hint="set BOTTLE_CLAUDE_BINARY to a Linux claude binary")
    npm = shutil.which("npm")
    if npm is None:
        raise BottleRuntimeError("npm is needed to fetch the claude binary",
                                 hint="install npm, or set BOTTLE_CLAUDE_BINARY to a Linux claude binary")
    spec = package if version == "latest" else f"{package}@{version}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        result = subprocess.run([npm, "pack", "--silent", spec], cwd=work, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=900)
        tarballs = list(Path(work).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BottleRuntimeError(f"`npm pack {spec}` failed: {last}",
                                     hint="check npm's network access, or set BOTTLE_CLAUDE_BINARY")
        with tarfile.open(tarballs[0]) as tar:
            member = tar.getmember("package/claude")
            source = tar.extractfile(member)
            staged = Path(work) / "claude"
            with open(staged, "wb") as out:
                shutil.copyfileobj(source, out)  # type: ignore[arg-type]
        staged.chmod(0o755)
        os.replace(staged, target)  # atomic: a concurrent run never sees half a binary
    return target


def digest(path: Path) -> str:
    """sha256 of the binary, remembered by (path, size, mtime) so 400 MB is hashed once."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_root() / "digests" / f"{key}.json"
    try:
        return json.loads(memo.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps({"path": str(path), "sha256": h.hexdigest()}))
    return h.hexdigest()
