"""The smol bottles on this host, found through the labels on their machines (``bottle ls/stop/gc``)."""

from __future__ import annotations

import os

from .binary import find
from .engine import Engine
from .machine import AGENT_LABEL, PID_LABEL, SLUG_LABEL, remove


def _engine() -> Engine:
    return Engine(find())


def _ours(engine: Engine) -> list[dict]:
    return [m for m in engine.ls() if (m.get("labels") or {}).get(SLUG_LABEL)]


def list_machines() -> list[dict]:
    """One entry per bottle microVM: slug, agent, backend, started, machine name and state."""
    return [{"slug": m["labels"][SLUG_LABEL], "agent": m["labels"].get(AGENT_LABEL, ""), "backend": "smol",
             "started": m.get("created_at") or 0, "machine": m.get("name"), "state": m.get("state")}
            for m in _ours(_engine())]


def stop_slug(slug: str) -> bool:
    """Stop and delete the microVM of bottle ``slug``, then its bundle and bridge; False when there is none."""
    engine = _engine()
    found = [m for m in _ours(engine) if m["labels"][SLUG_LABEL] == slug]
    for machine in found:
        remove(engine, machine["name"])
    return _docker_side(lambda sidecar: sidecar.remove_bottle(slug), default=False) or bool(found)


def _docker_side(action, *, default):
    """``action(sidecar)`` for the bundle container and bridge (labelled alike); ``default`` with no engine."""
    from bottle_docker import sidecar

    if sidecar.availability() is not None:
        return default  # no engine: no bundle can be left either
    return action(sidecar)


def owner_alive(labels: dict) -> bool:
    """Whether the bottle process that created a machine still runs here."""
    try:
        pid = int(labels.get(PID_LABEL, ""))
        if pid <= 0:  # kill(0) or kill(-n) would signal a process group, not ask about a process
            return False
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def collect() -> list[str]:
    """Delete every bottle microVM whose creating process is gone, then the bundles and bridges of such bottles."""
    engine = _engine()
    removed = []
    for machine in _ours(engine):
        if not owner_alive(machine["labels"]):
            remove(engine, machine["name"])
            removed.append(f"microVM {machine['name']}")
    return removed + _docker_side(lambda sidecar: sidecar.collect_garbage(), default=[])
