"""A bundle started for a warm pool: its slow daemons start now and serve only once a run has claimed the bottle.

The backend gives a pooled bundle its configuration and the :data:`POOLED`
marker, nothing secret. The entry point starts at once every daemon of the
daemon table marked ``ahead`` (the proxy: the slow one to start, all
imports), which imports what reads no configuration and then waits for its
go (``readiness.wait_for_go``: in the proxy, :func:`wait_in_proxy`, before
its addons read anything). Once all wait, the entry point says
``bottle-bundle: pooled`` and waits itself (:func:`wait_for_claim`). The git
gate and the supervisor are not started ahead: as in a cold bundle they start
on their first connection, so a pooled bottle holds no memory for them.

A claim places the run's configuration, secrets and the rest, and
:data:`CLAIMED` last, in one tar stream, then sends the bundle
:data:`CLAIM_SIGNAL`. The entry point checks that the waiting daemons fit the
run's configuration (the same command line and user: what they were started
with is fixed), gives each the go (or, one the run does not run, lets it end
unread), starts the rest (the egress stage, whose configuration is the
run's, and a rehearsal's scripted model; the gate and the supervisor on
their first connection), and says ``bottle-bundle: ready``
as a cold bundle does. No daemon held anything of another run: each reads
the configuration only after its go, and the bottle is never claimed twice.
The packet filter was set when the bundle started (and again by the backend
before the claim, should the run's rules differ).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

from . import readiness

POOLED = Path("/etc/bottle/pooled")
CLAIMED = Path("/etc/bottle/claimed")
POOLED_LINE = "bottle-bundle: pooled"
#: Sent to the bundle once the claim's files are in place; tini passes it on to the entry point.
CLAIM_SIGNAL = "SIGUSR1"
#: How often a waiting entry point looks for :data:`CLAIMED` without the signal (a backend that only places it).
LOOK_AGAIN = 1.0


def is_pooled() -> bool:
    """Whether this bundle was started for a pool and has not been claimed yet."""
    return POOLED.exists() and not CLAIMED.exists()


def wait_in_proxy() -> None:
    """In the proxy, before its addons read the configuration: wait for the go, when started ahead of a claim."""
    readiness.wait_for_go()


def listen_for_claim() -> int:
    """Before anything starts: have :data:`CLAIM_SIGNAL` wake :func:`wait_for_claim`; returns the fd to watch."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(getattr(signal, CLAIM_SIGNAL), lambda *_: None)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    return wake_read


def wait_for_claim(wake: int, watched: dict[int, str]) -> None:
    """In the entry point: wait until the claim's files are in place, woken by its signal.

    ``watched``: each daemon started ahead, its readiness pipe's fd to its
    name. A pipe that closes is a daemon ended while pooled: exit non-zero,
    so a broken pooled bottle shows as a stopped bundle and is never handed over.
    """
    while not CLAIMED.exists():
        ready, _, _ = select.select([wake, *watched], [], [], LOOK_AGAIN)
        for fd in ready:
            if fd == wake:
                os.read(wake, 512)
            elif not os.read(fd, 64):
                print(f"bottle-bundle: {watched[fd]} exited while pooled; stopping", file=sys.stderr, flush=True)
                sys.exit(1)


def await_waiting(watched: dict[int, str], timeout: float) -> None:
    """Until every daemon started ahead says it waits for the claim; exit non-zero when one ends first."""
    deadline = time.monotonic() + timeout
    left = dict(watched)
    while left:
        ready, _, _ = select.select(list(left), [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            print(f"bottle-bundle: never waited for a claim: {', '.join(left.values())}", file=sys.stderr, flush=True)
            sys.exit(1)
        for fd in ready:
            said = os.read(fd, 64)
            if not said:
                print(f"bottle-bundle: {left[fd]} exited while pooled; stopping", file=sys.stderr, flush=True)
                sys.exit(1)
            if readiness.WAITING in said:
                del left[fd]
    print(POOLED_LINE, flush=True)


def proxy_inputs(config: dict) -> tuple:
    """What the proxy's command line is made of: a claim may not change these once the proxy has started."""
    return (config["proxy"]["listen_host"], int(config["proxy"]["port"]), int(config["egress"]["port"]),
            config.get("upstream_ca"))
