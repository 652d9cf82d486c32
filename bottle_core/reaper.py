"""The dead-man's switch: a bottle ends by itself when the ``bottle`` process that owns it dies.

Before a launch, the owner starts this module as a small process of its own
(a new session, so a Ctrl-C or a kill aimed at the owner does not reach it),
with the read end of a pipe as its stdin; the owner alone holds the write
end. A bottle that ends normally writes one byte on the pipe after its
teardown, and the reaper leaves quietly. When the owner dies any other way
(``kill -9``, an out-of-memory kill, a crash that skipped its teardown), the
kernel closes the write end, the reaper reads end-of-file, marks the bottle's
state dir ended (its logs are kept for the usual retention; ``bottle gc``
ages them out) and asks the bottle's backend to stop it (``stop_bottle``:
everything it made for that slug), twice. It works for every backend, and
depends on nothing the dead process would have cleaned up.

A bottle can change owner once: a warm pool's keeper launches it, and the
run that claims it becomes its owner (:func:`hand_over` writes that run's
pid in the state dir, after starting that run's own reaper). The keeper's
reaper then leaves such a bottle alone even when the keeper dies; the
claiming run's reaper sweeps it should that run die.

Usage (by :func:`start` only)::

    python -m bottle_core.reaper BACKEND SLUG STATE_DIR  < pipe
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .atomic import atomic_write

#: Written by the owner when its teardown has run: nothing left to do.
RELEASE = b"done"
#: A second sweep this long after the first catches a resource whose creation was in flight when the owner died.
SECOND_SWEEP = 2.0


class Switch:
    """The owner's end of the pipe to a running reaper."""

    def __init__(self, write_fd: int, process: subprocess.Popen):
        self.write_fd = write_fd
        self.process = process

    def release(self) -> None:
        """Tell the reaper the owner removed the bottle itself; never raises."""
        try:
            os.write(self.write_fd, RELEASE)
        except OSError:
            pass  # the reaper is gone already
        finally:
            try:
                os.close(self.write_fd)
            except OSError:
                pass
        # Not waited for: a reaper just started may still be starting up (a Python start, ~0.2 s on a busy
        # machine), and a run's exit status should not wait on it. It leaves as soon as it reads the byte
        # (which stays in the pipe after this end closes); the subprocess module reaps it on a later start of a
        # process (a long-lived owner: the pool's keeper), or the owner's own end does.
        self.process.poll()


def start(backend: str, slug: str, state_dir: str) -> Switch:
    """Start the reaper of bottle ``slug`` (of ``backend``) and return the owner's end of its pipe."""
    read_fd, write_fd = os.pipe()  # both non-inheritable: no other child of the owner keeps the pipe open
    try:
        process = subprocess.Popen([sys.executable, "-m", "bottle_core.reaper", backend, slug, state_dir],
                                   stdin=read_fd,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(read_fd)
    return Switch(write_fd, process)


#: In a bottle's state dir: the pid of the run that took the bottle over from its pool's keeper.
OWNER_FILE = "owner.pid"


def hand_over(state_dir: str, pid: int | None = None) -> None:
    """Record that process ``pid`` (this one by default) owns the bottle from now on (written whole, then renamed)."""
    atomic_write(Path(state_dir) / OWNER_FILE, f"{pid or os.getpid()}\n")


def handed_to(state_dir: str) -> int | None:
    """The pid a bottle was handed over to (see :func:`hand_over`), or None when it never changed owner."""
    if not state_dir:
        return None
    try:
        return int((Path(state_dir) / OWNER_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs (on this host); a zombie (dead, not yet waited for by its parent) does not."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal's answer stands
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def sweep(backend: str, slug: str) -> None:
    """Ask ``backend`` to stop bottle ``slug``: everything it made for it goes."""
    from .plugins import backend_hooks, load_backend_plugin

    plugin, _record = load_backend_plugin(backend)
    backend_hooks(plugin, backend).stop_bottle(slug=slug)


def main(argv: list[str]) -> int:
    from .plan import mark_ended

    backend, slug, state_dir = argv
    said = b""
    while True:  # until the owner writes (a normal end) or its end of the pipe closes (it died)
        chunk = os.read(0, 64)
        if not chunk:
            break
        said += chunk
    if said.startswith(RELEASE):
        return 0
    taker = handed_to(state_dir)
    if taker is not None and alive(taker):
        return 0  # a run took the bottle over from its pool; that run's own reaper watches it now
    mark_ended(state_dir)  # first: once the bottle is seen gone, its state says it ended
    for pause in (0, SECOND_SWEEP):
        time.sleep(pause)
        try:
            sweep(backend, slug)
        except Exception:  # noqa: BLE001 - nobody is left to tell; the second sweep, or `bottle gc`, tries again
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
