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

from . import settings
from .atomic import atomic_write
from .errors import BottleRuntimeError

PACKAGES = {"x86_64": "@anthropic-ai/claude-code-linux-x64", "amd64": "@anthropic-ai/claude-code-linux-x64",
            "aarch64": "@anthropic-ai/claude-code-linux-arm64", "arm64": "@anthropic-ai/claude-code-linux-arm64"}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/bottle/claude`` (``~/.cache`` when unset): fetched binaries and their digests."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bottle" / "claude"


def given() -> Path | None:
    """``$BOTTLE_CLAUDE_BINARY``, checked; None when unset."""
    named = settings.current().claude_binary
    if not named:
        return None
    path = Path(named).expanduser()
    if not path.is_file():
        raise BottleRuntimeError(f"BOTTLE_CLAUDE_BINARY={named}: no such file",
                                 hint="point it at a Linux claude binary, or unset it to fetch one with npm")
    if not os.access(path, os.X_OK):
        raise BottleRuntimeError(f"BOTTLE_CLAUDE_BINARY={named} is not executable",
                                 hint=f"chmod +x {named}, or unset it to fetch one with npm")
    return path


def identity() -> str:
    """What names the agent image's claude, found without fetching anything (``prepare`` may not):
    the digest of ``$BOTTLE_CLAUDE_BINARY``, else the npm release ``npm:<version>``."""
    path = given()
    return digest(path) if path is not None else f"npm:{settings.current().claude_version}"


def locate() -> Path:
    """``$BOTTLE_CLAUDE_BINARY``, else the cached download of ``$BOTTLE_CLAUDE_VERSION`` (default: the pinned release), else fetch it."""
    path = given()
    if path is not None:
        return path
    version = settings.current().claude_version
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
        try:
            result = subprocess.run([npm, "pack", "--silent", spec], check=False, cwd=work, capture_output=True,
                                    text=True, stdin=subprocess.DEVNULL, timeout=900)
        except subprocess.TimeoutExpired:
            raise BottleRuntimeError(f"`npm pack {spec}` did not finish in 15 minutes",
                                     hint="check npm's network access, or set BOTTLE_CLAUDE_BINARY") from None
        tarballs = list(Path(work).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BottleRuntimeError(f"`npm pack {spec}` failed: {last}",
                                     hint="check npm's network access, or set BOTTLE_CLAUDE_BINARY")
        staged = Path(work) / "claude"
        with tarfile.open(tarballs[0]) as tar:
            try:
                source = tar.extractfile("package/claude")
            except KeyError:
                source = None
            if source is None:
                raise BottleRuntimeError(f"{tarballs[0].name} has no package/claude file",
                                         hint="set BOTTLE_CLAUDE_VERSION to a release that ships the native binary")
            with source, open(staged, "wb") as out:
                shutil.copyfileobj(source, out)
        staged.chmod(0o755)
        os.replace(staged, target)  # atomic: a concurrent run never sees half a binary
    return target


def digest(path: Path) -> str:
    """sha256 of the binary, remembered by (path, size, mtime) so 400 MB is hashed once.

    The memo is a small JSON file under ``cache_root()/digests`` rather than beside
    the binary, because a binary the user points at may sit in a read-only place.
    """
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
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, json.dumps({"path": str(path), "size": stat.st_size,
                                       "mtime_ns": stat.st_mtime_ns, "sha256": h.hexdigest()}))
    except OSError:
        pass  # an unwritable cache only costs hashing again next time
    return h.hexdigest()
