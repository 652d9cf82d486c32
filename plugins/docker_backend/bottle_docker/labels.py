"""Labels that mark every engine resource a bottle creates, so it can be found and removed."""

from __future__ import annotations

import os
import time

SLUG = "bottle.slug"
AGENT = "bottle.agent"
ROLE = "bottle.role"
OWNER_PID = "bottle.pid"
STARTED = "bottle.started"
STATE_DIR = "bottle.state-dir"


def for_bottle(plan, role: str) -> dict[str, str]:
    """The labels of one resource of ``plan``'s bottle."""
    return {
        SLUG: plan.slug,
        AGENT: plan.agent,
        ROLE: role,
        OWNER_PID: str(os.getpid()),
        STARTED: f"{time.time():.0f}",
        STATE_DIR: plan.state_dir,
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the bottle process that owns a resource is still running on this host.

    The owner is the process that created it, or the run that took it over
    from a warm pool (named in its state dir, see :func:`bottle_core.reaper.handed_to`).
    """
    from bottle_core.reaper import alive, handed_to

    handed = handed_to(labels.get(STATE_DIR) or "")
    try:
        pid = handed if handed is not None else int(labels.get(OWNER_PID, ""))
    except ValueError:
        return False
    return alive(pid)
