"""Labels and annotations that mark every object a bottle creates, so ls/stop/gc and the reaper find it again.

Label values are restricted (63 characters of ``[A-Za-z0-9._-]``), so what
does not fit one (the state dir, the owner's host) is an annotation.
"""

from __future__ import annotations

import os
import socket
import time

SLUG = "bottle.slug"
AGENT = "bottle.agent"
ROLE = "bottle.role"
#: Every object of every bottle carries this label, so one selector finds them all.
MANAGED = "bottle.managed"
OWNER_PID = "bottle/owner-pid"
OWNER_HOST = "bottle/owner-host"
STARTED = "bottle/started"
STATE_DIR = "bottle/state-dir"


def for_bottle(plan, role: str) -> dict[str, str]:
    """The labels of one object of ``plan``'s bottle."""
    return {MANAGED: "true", SLUG: plan.slug, AGENT: plan.agent, ROLE: role}


def annotations(plan) -> dict[str, str]:
    """Who owns the bottle (this process on this host), when it started, where its state lies."""
    return {OWNER_PID: str(os.getpid()), OWNER_HOST: socket.gethostname(), STARTED: f"{time.time():.0f}",
            STATE_DIR: plan.state_dir}


def selector(slug: str | None = None, role: str | None = None) -> str:
    """A label selector for bottle objects (of one slug, of one role)."""
    parts = [f"{MANAGED}=true"]
    if slug:
        parts.append(f"{SLUG}={slug}")
    if role:
        parts.append(f"{ROLE}={role}")
    return ",".join(parts)


def owner_alive(notes: dict[str, str] | None) -> bool:
    """Whether the ``bottle`` process that made an object still runs; an owner on another host counts as alive."""
    from bottle_core.reaper import alive

    notes = notes or {}
    if notes.get(OWNER_HOST) != socket.gethostname():
        return True  # not ours to judge: that host's own gc or reaper removes it
    try:
        pid = int(notes.get(OWNER_PID, ""))
    except ValueError:
        return False
    return alive(pid)
