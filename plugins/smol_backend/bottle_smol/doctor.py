"""``bottle doctor`` for smol: the cheap checks, then whether a guest really boots here.

Only a boot tells whether the hypervisor can run smolvm's guest kernel, so
the doctor boots one throwaway machine (bare: the engine's own guest agent,
1 vCPU, 256 MiB; bounded by :data:`BOOT_TIMEOUT`) in a throwaway state dir,
and deletes it. The answer is cached, keyed by the engine (path, version,
size, mtime) and the host (kernel, KVM modules, ``/dev/kvm`` mode): it is
asked again only when one of them changes, or with ``--refresh``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import availability as availability_module
from bottle_core.atomic import atomic_write
from .availability import KVM, host_problems
from .binary import SmolvmNotFound, Smolvm, find, format_version, version_of
from .engine import Engine, SmolvmError

#: The most a throwaway boot may take, start to exec. smolvm gives up on its own after 30 s without the agent.
BOOT_TIMEOUT = 40.0
CACHE_PREFIX = "smol-doctor-"
PROBE_CPUS, PROBE_MEM_MIB = 1, 256
#: Checks whose failure makes a boot pointless (no engine to ask, or one smolvm would refuse at once).
_BLOCKING = ("platform", "engine", "kvm-device")


def cache_path(key: dict) -> Path:
    """Where the boot's answer for ``key`` (engine and host) is kept: ``$XDG_CACHE_HOME/bottle``, else ``~/.cache/bottle``.

    One file per engine and host, so two installations on one host keep their own answers.
    """
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / "bottle" / f"{CACHE_PREFIX}{digest}.json"


def fingerprint(binary: Smolvm) -> dict:
    """What the boot's answer depends on: the engine and the host. Cheap: no VM, one cached ``--version``."""
    try:
        info = os.stat(binary.path)
        engine = {"path": binary.path, "version": format_version(version_of(binary)), "size": info.st_size,
                  "mtime": int(info.st_mtime)}
    except (OSError, SmolvmNotFound):
        engine = {"path": binary.path}
    try:
        kvm_mode = oct(os.stat(KVM).st_mode & 0o777)
    except OSError:
        kvm_mode = None
    folder = availability_module.MODULES
    modules = sorted(p.name for p in folder.glob("kvm*")) if folder.is_dir() else []
    host = {"system": sys.platform, "kernel": platform.release(), "machine": platform.machine(),
            "kvm_modules": modules, "kvm_mode": kvm_mode}
    return {"engine": engine, "host": host}


def boot_probe(binary: Smolvm, timeout: float = BOOT_TIMEOUT) -> dict:
    """Boot a throwaway machine and run one command in it; ``{"ok", "seconds", "error", "guest"}``.

    ``error`` is the engine's own ``Error:`` line when the boot failed. The
    machine and its state dir are removed whatever happened.
    """
    # A short path: smolvm keeps each machine's Unix sockets under the state dir (107-byte limit).
    state = tempfile.mkdtemp(prefix="smol-doctor-", dir="/tmp" if os.path.isdir("/tmp") else None)
    engine = Engine(binary, state_dir=state if sys.platform == "linux" else None)
    name = f"bottle-doctor-{os.getpid()}"
    started = time.monotonic()
    try:
        engine.call("create", ["--name", name, "--cpus", str(PROBE_CPUS), "--mem", str(PROBE_MEM_MIB)], timeout=60)
        engine.start(name, timeout=timeout)
        guest = engine.call("exec", ["--name", name, "--", "uname", "-r"], timeout=max(5.0, timeout / 2))
        if not guest.ok:
            return _outcome(False, started, f"the guest ran but `uname -r` exited {guest.returncode}")
        return _outcome(True, started, None, guest=guest.text().strip())
    except SmolvmError as exc:
        return _outcome(False, started, exc.detail)
    finally:
        try:
            engine.call("delete", ["--name", name, "-f"], timeout=60, check=False)
        finally:
            shutil.rmtree(state, ignore_errors=True)


def _outcome(ok: bool, started: float, error: str | None, guest: str | None = None) -> dict:
    return {"ok": ok, "seconds": round(time.monotonic() - started, 1), "error": error, "guest_kernel": guest}


def _read_cache(key: dict) -> dict | None:
    try:
        entry = json.loads(cache_path(key).read_text())
    except (OSError, ValueError):
        return None
    return entry if entry.get("key") == key else None


def _write_cache(key: dict, entry: dict) -> None:
    path = cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"key": key, **entry}, indent=2))  # two doctors at once: the last whole answer wins


def boot(binary: Smolvm, *, refresh: bool = False) -> dict:
    """The boot's answer for this engine and host: cached, or asked now (and cached)."""
    key = fingerprint(binary)
    cached = _read_cache(key)
    if not refresh and cached:
        return {**cached["boot"], "cached": True, "checked_at": cached.get("checked_at")}
    result = boot_probe(binary)
    checked_at = time.time()
    _write_cache(key, {"boot": result, "checked_at": checked_at})
    return {**result, "cached": False, "checked_at": checked_at}


def cached_boot_failure() -> str | None:
    """The cached boot failure for this very engine and host, as one line; None if none is known (no boot here)."""
    try:
        binary = find()
    except SmolvmNotFound:
        return None
    cached = _read_cache(fingerprint(binary))
    if not cached or cached["boot"].get("ok"):
        return None
    return f"a throwaway microVM did not boot here (bottle doctor): {cached['boot'].get('error')}"


def availability() -> str | None:
    """``bottle backends``: the cheap checks, then a boot failure the doctor found for this engine and host."""
    return availability_module.availability() or cached_boot_failure()


def diagnose(*, refresh: bool = False) -> dict:
    """The doctor's report: every check with its result, the boot, and one line saying why not (or None).

    The boot runs even when the hypervisor check already predicts failure,
    so the report carries the engine's own error, not only bottle's guess.
    """
    problems = dict(host_problems())
    names = ["platform", "engine"] + (["kvm-device", "hypervisor"] if sys.platform == "linux" else [])
    checks = [{"name": name, "ok": name not in problems, "detail": problems.get(name)} for name in names]
    report: dict = {"checks": checks}
    engine = None
    try:
        binary = find()
        engine = {"path": binary.path, "source": binary.source, "version": format_version(version_of(binary))}
    except SmolvmNotFound:
        pass
    report["engine"] = engine
    blocking = [problems[name] for name in _BLOCKING if name in problems]
    if blocking:
        report["boot"] = {"ran": False, "ok": False, "error": None, "skipped": "; ".join(blocking)}
    else:
        report["boot"] = {"ran": True, **boot(find(), refresh=refresh)}
    booted = report["boot"]["ok"]
    detail = None if booted else report["boot"].get("error") or report["boot"].get("skipped")
    if detail and report["boot"].get("cached"):
        detail += " (cached for this engine and host; --refresh boots again)"
    checks.append({"name": "boot", "ok": booted, "detail": detail})
    report["ok"] = all(check["ok"] for check in checks)
    report["reason"] = None if report["ok"] else _reason(problems, report["boot"])
    return report


def _reason(problems: dict[str, str], boot_result: dict) -> str:
    """One line: what stops smol here, with the engine's own words when a boot was tried."""
    if not boot_result.get("ran"):
        return boot_result["skipped"]
    if boot_result["ok"]:  # booted, yet a cheap check failed (say, an unchecked version was pinned)
        return "; ".join(problems.values())
    said = f"a guest failed to boot (throwaway boot, {boot_result['seconds']} s): {boot_result['error']}"
    return f"{problems['hypervisor']}; {said}" if "hypervisor" in problems else said
