"""Finding the smolvm binary and reading its version, without importing the engine's Python package.

Search order: ``$BOTTLE_SMOLVM`` (a path), ``smolvm`` on PATH, then the CLI
shipped inside the ``smolmachines`` wheel (``smol/smol-vmm``, with
``SMOLVM_LIB_DIR`` pointing at that folder so it finds libkrun, and
``SMOLVM_AGENT_ROOTFS_TAR`` at the guest agent's root filesystem beside it).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bottle_core.errors import BottleRuntimeError
from bottle_core.settings import BackendSetting

BINARY_SETTING = BackendSetting(
    "smolvm", "smol backend: the smolvm binary to use (default: on PATH, else the smolmachines wheel's).")
STATE_DIR_SETTING = BackendSetting(
    "smolvm_state_dir", "smol backend: smolvm's state root, to keep these machines apart from others.")
ENV_BINARY = BINARY_SETTING.variable
WHEEL_PACKAGE = "smol"
WHEEL_BINARY = "smol-vmm"
WHEEL_ROOTFS = "agent-rootfs.tar.zst"
VERSION_RE = re.compile(r"^smolvm (\d+)\.(\d+)\.(\d+)", re.MULTILINE)

Version = tuple[int, int, int]

#: The smolvm releases whose CLI this backend was checked against (flags, ``ls --json`` fields, error texts):
#: from the first up to, not including, the second. smolvm's flags change between minor releases.
CHECKED = ((1, 32, 0), (1, 33, 0))


class SmolvmNotFound(BottleRuntimeError):
    """No smolvm binary could be found, or the one named cannot run."""


@dataclass(frozen=True)
class Smolvm:
    """One smolvm binary: where it is, where it came from, and what its child needs in its environment."""

    path: str
    source: str  # "BOTTLE_SMOLVM", "PATH" or "smolmachines"
    env: dict[str, str] = field(default_factory=dict)

    def child_env(self) -> dict[str, str]:
        """The environment for a smolvm child: ours, cleaned of what would change its policy, plus its own."""
        env = {k: v for k, v in os.environ.items() if not _dropped(k)}
        env.update(self.env)
        return env


# Variables smolvm reads that would bend a bottle: proxies (the in-VM image pull would use them),
# a default machine name, and egress-floor switches (loosened floor, or strict mode blocking the bundle).
_DROP = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "smolvm_machine_name", "smolvm_publish_addr",
         "smolvm_egress_floor", "smolvm_egress_allow_private", "smolvm_allow_host_loopback"}


def _dropped(key: str) -> bool:
    return key.lower() in _DROP


def wheel_folder() -> Path | None:
    """The folder of the ``smolmachines`` wheel's ``smol`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / WHEEL_BINARY).is_file():
            return Path(location)
    return None


def find() -> Smolvm:
    """The smolvm binary to use, or :class:`SmolvmNotFound` saying what to do."""
    named = BINARY_SETTING.value()
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise SmolvmNotFound(f"{ENV_BINARY}={named} is not an executable file",
                                 hint=f"point {ENV_BINARY} at a smolvm binary, or unset it")
        return Smolvm(named, ENV_BINARY)
    on_path = shutil.which("smolvm")
    if on_path:
        return Smolvm(on_path, "PATH")
    folder = wheel_folder()
    if folder is not None:
        env = {"SMOLVM_LIB_DIR": str(folder)}
        # Run from the wheel, the CLI does not find the guest agent's root filesystem by itself.
        if (folder / WHEEL_ROOTFS).is_file():
            env["SMOLVM_AGENT_ROOTFS_TAR"] = str(folder / WHEEL_ROOTFS)
        return Smolvm(str(folder / WHEEL_BINARY), "smolmachines", env)
    raise SmolvmNotFound("no smolvm binary found",
                         hint=f"pip install bottle-smol (it brings the smolmachines engine), or set {ENV_BINARY}")


def parse_version(text: str) -> Version | None:
    """``(1, 32, 2)`` from ``smolvm 1.32.2``; None when the text has no such line."""
    match = VERSION_RE.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_of(binary: Smolvm) -> Version:
    """Run ``smolvm --version`` (cached per binary) and parse it."""
    return _version(binary.path, tuple(sorted(binary.env.items())))


@functools.cache
def _version(path: str, extra_env: tuple[tuple[str, str], ...]) -> Version:
    binary = Smolvm(path, "", dict(extra_env))
    try:
        done = subprocess.run([binary.path, "--version"], capture_output=True, env=binary.child_env(),
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmolvmNotFound(f"smolvm at {binary.path} did not run: {exc}") from None
    found = parse_version(done.stdout.decode("utf-8", "replace"))
    if found is None:
        shown = (done.stdout + done.stderr).decode("utf-8", "replace").strip().splitlines()[:1] or ["no output"]
        raise SmolvmNotFound(f"smolvm at {binary.path} did not report a version (exit {done.returncode}: {shown[0]})")
    return found


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


def checked_version_problem(binary: Smolvm, version: Version) -> str | None:
    """Why ``version`` is refused (not one the backend was checked against), or None."""
    low, high = CHECKED
    if low <= version < high:
        return None
    wanted = f"{format_version(low)} up to (not including) {format_version(high)}"
    return (f"smolvm {format_version(version)} at {binary.path} ({binary.source}) is not a version this backend "
            f"was checked against ({wanted}): pip install 'smolmachines>={format_version(low)},"
            f"<{format_version(high)}', or point BOTTLE_SMOLVM at such a smolvm")
