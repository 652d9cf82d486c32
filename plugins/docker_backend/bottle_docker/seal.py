"""The steps that seal a bottle (the bundle's packet filter set, the agent's default route removed), run in
the background while the launch goes on, and awaited before anything runs in the bottle.

Each is a one-shot container (:mod:`.oneshot`) that takes a container start and its run; meanwhile the
bundle's CA is read and the agent's files are placed, which need neither. :class:`.container.DockerBottle`
waits for the seal before its first command, in the agent or the bundle, and before saying it is ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bottle_core.errors import BottleRuntimeError


class Seal:
    """Steps run at once, each in a thread of its own; :meth:`wait` returns once all have ended well, or
    raises the first one's error (again at every call: a bottle whose seal failed never runs anything)."""

    def __init__(self, slug: str):
        self.slug = slug
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def add(self, step: Callable[[], None], what: str) -> None:
        """Run ``step`` now, in the background; ``what`` names it in the error should it raise no error of
        bottle's own."""
        def run() -> None:
            try:
                step()
            except BottleRuntimeError as exc:
                self._errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - an engine's refusal, said at the wait
                self._errors.append(BottleRuntimeError(f"could not {what} in bottle {self.slug}: {exc}"))

        # A daemon thread: a launch that fails before the wait must not keep the process from exiting.
        thread = threading.Thread(target=run, name=f"seal-{self.slug}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        """Until every step has ended (each is bounded by its one-shot's timeout); raises if one failed."""
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
