"""Whether smolvm can run microVMs here, checked cheaply: no VM is booted (``bottle doctor`` boots one).

Each check returns None or one line: what is wrong and what to do. Having a
``/dev/kvm`` is not enough: a KVM provided by PVM (a VM whose hypervisor
offers paravirtualised KVM, module ``kvm_pvm``) runs only PVM-enabled guest
kernels natively, and smolvm's guest kernel is not one, so every boot dies
(the engine reports ``KVM_EXIT_INTERNAL_ERROR``).
"""

from __future__ import annotations

import os
import platform
import stat
import sys
from pathlib import Path

from .binary import SmolvmNotFound, checked_version_problem, find, version_of

KVM = "/dev/kvm"
MODULES = Path("/sys/module")
#: KVM modules that drive the CPU's own virtualisation extensions (guests run natively).
HARDWARE_KVM = ("kvm_intel", "kvm_amd")
_SUPPORTED = {("linux", "x86_64"), ("linux", "aarch64"), ("linux", "arm64"), ("darwin", "arm64")}
#: The newest glibc symbol the engine (smol-vmm, libkrun.so of smolmachines 1.32.2) needs is GLIBC_2.30,
#: though its wheel is tagged manylinux_2_28, so pip alone would install it where it cannot run.
MIN_GLIBC = (2, 30)


def platform_problem(system: str | None = None, machine: str | None = None,
                     libc: tuple[str, str] | None = None) -> str | None:
    """Why this OS/CPU/C library cannot host smolvm microVMs, or None."""
    system = system or sys.platform
    machine = (machine or platform.machine()).lower()
    if (system, machine) not in _SUPPORTED:
        return (f"unsupported platform {system}/{machine}: smolvm runs microVMs on Linux x86_64/arm64 (KVM) "
                "and macOS arm64; use the docker backend here")
    if system != "linux":
        return None
    name, version = libc if libc is not None else platform.libc_ver()
    if name != "glibc":
        return (f"unsupported C library ({name or 'not glibc'}): the smolvm engine is built for glibc "
                f"{'.'.join(map(str, MIN_GLIBC))} or newer; use the docker backend here")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < MIN_GLIBC:
        return (f"glibc {version} is older than {'.'.join(map(str, MIN_GLIBC))}, which the smolvm engine needs: "
                "use a newer distribution (Debian 11, Ubuntu 20.04 or later), or the docker backend")
    return None


def hypervisor_problem(modules: Path | None = None) -> str | None:
    """Why the KVM here cannot run smolvm's guest kernel (PVM, or no hardware KVM module), or None."""
    modules = MODULES if modules is None else modules
    if (modules / "kvm_pvm").exists():
        return ("the hypervisor cannot run smolvm's guest kernel: /dev/kvm here is PVM (module kvm_pvm, a VM "
                "without hardware nested virtualisation), which runs only PVM-enabled guest kernels; use bare-metal "
                "Linux, a VM with nested virtualisation (kvm_intel/kvm_amd with nested=1), or macOS arm64 - or the "
                "docker backend")
    if not any((modules / name).exists() for name in HARDWARE_KVM):
        return ("no hardware KVM: neither kvm_intel nor kvm_amd is loaded, so guests would be emulated; "
                "load the module for this CPU (modprobe kvm_intel or kvm_amd) or enable nested virtualisation "
                "for this VM")
    return None


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
                f"grant it with `sudo chmod 0666 {path}` (`make kvm` does), or a udev rule "
                f'(KERNEL=="kvm", MODE="0666")')
    return None


def engine_problem() -> str | None:
    """Why the smolvm engine cannot be used: none found, it does not run, or a version not checked."""
    try:
        binary = find()
        return checked_version_problem(binary, version_of(binary))
    except SmolvmNotFound as exc:
        return exc.render()


def host_problems() -> list[tuple[str, str]]:
    """``(check, problem)`` for each cheap check that fails, in the order a user fixes them."""
    checks = [("platform", platform_problem), ("engine", engine_problem)]
    if sys.platform == "linux":
        checks += [("kvm-device", kvm_problem), ("hypervisor", hypervisor_problem)]
    return [(name, problem) for name, check in checks if (problem := check())]


def availability() -> str | None:
    """None when every cheap check passes, else one line: everything that fails, and what to do."""
    return "; ".join(problem for _, problem in host_problems()) or None
