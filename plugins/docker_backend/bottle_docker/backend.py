"""The docker backend's hook implementations (entry point ``bottle.backends: docker``).

Nothing heavy is imported at module level: ``bottle backends`` loads this
module just to ask for availability.
"""

from __future__ import annotations

from bottle_core import hookimpl


@hookimpl
def backend_availability():
    from .engine import availability

    return availability()
