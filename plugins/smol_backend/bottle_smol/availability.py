"""Whether smolvm can run microVMs here, checked cheaply: no VM is booted."""

from __future__ import annotations

import os
import platform
import stat
import sys

from .binary import MIN_VERSION, SmolvmNotFound, find, format_version, version_of

KVM = "/dev/kvm"
_SUPPORTED = {("linux", "x86_64"), ("linux", "aarch64"), ("linux", "arm64"), ("darwin", "arm64")}


def platform_problem(system: str | None = None, machine: str | None = None) -> str | None:
    """Why this OS/CPU cannot host smolvm microVMs, or None."""
    system = system or sys.platform
    machine = (machine or platform.machine()).lower()
    if (system, machine) in _SUPPORTED:
        return None
    return (f"unsupported platform {system}/{machine}: smolvm runs microVMs on Linux x86_64/arm64 (KVM) "
            "and macOS arm64; use the docker backend here")


def kvm_problem(path: str = KVM) -> str | None:
    """Why ``/dev/kvm`` is unusable for smolvm, or None.

    smolvm runs each microVM's VMM as its own unprivileged uid, so the device
    must be readable and writable by that uid, not just by the caller.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return (f"no {path}: KVM is missing (load kvm_intel/kvm_amd, or enable nested virtualisation "
                "for this VM); the smol backend needs a hypervisor")
    except OSError as exc:
        return f"cannot stat {path}: {exc}"
    if not stat.S_ISCHR(info.st_mode):
        return f"{path} is not a character device"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o006 != 0o006:
        return (f"{path} has mode {mode:04o}, but smolvm runs each microVM as its own unprivileged uid: "
                f"`chmod 0666 {path}` (or a udev rule giving it to a group those uids are in)")
    return None


#: What the backend itself still lacks, whatever the host: ``launch`` refuses until it is built.
MISSING = ("its bundle (proxy, egress, git gate, supervise beside the microVM) is not built yet, "
           "so it cannot launch a bottle: use --backend docker")


def host_problem() -> str | None:
    """Why this host cannot run smolvm microVMs (platform, binary, KVM), or None."""
    problem = platform_problem()
    if problem:
        return problem
    try:
        binary = find()
        version = version_of(binary)
    except SmolvmNotFound as exc:
        return exc.render()
    if version < MIN_VERSION:
        return (f"smolvm {format_version(version)} at {binary.path} is older than {format_version(MIN_VERSION)}: "
                "pip install -U smolmachines, or point BOTTLE_SMOLVM at a newer smolvm")
    if sys.platform == "linux":
        return kvm_problem()
    return None


def availability() -> str | None:
    """None when the smol backend can launch a bottle here, else one line: everything it lacks, and what to do."""
    return "; ".join(problem for problem in (host_problem(), MISSING) if problem) or None
