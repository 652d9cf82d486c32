"""One-shot helper containers (the agent's route fixer, the bundle's packet filter): run to their end, then gone."""

from __future__ import annotations

import threading

from bottle_core.errors import BottleRuntimeError

from .removal import remove_resources

ONE_SHOT_TIMEOUT = 30


def run_one_shot(client, container: str, what: str) -> None:
    """Start ``container`` and wait for it; fail with its words (``could not WHAT``) unless it exits 0."""
    api = client.api
    api.start(container)
    status = api.wait(container, timeout=ONE_SHOT_TIMEOUT).get("StatusCode")
    if status != 0:
        words = api.logs(container).decode("utf-8", "replace").strip()
        raise BottleRuntimeError(f"could not {what} ({words or f'exit {status}'})")
    # Its work is done: remove it now, off the teardown's path (teardown still sweeps it if this loses).
    threading.Thread(target=remove_resources, args=(client, [container], []), daemon=True).start()
