"""A bundle started for a warm pool: its proxy starts now and serves only once a run has claimed the bottle.

The backend gives a pooled bundle its configuration and the :data:`POOLED`
marker, nothing secret. The entry point starts the proxy at once (the
slowest daemon to start: mitmproxy's imports, the CA), whose addons wait in
:func:`wait_in_proxy` before they read anything; the entry point says
``bottle-bundle: pooled`` once the proxy waits, then waits itself in
:func:`wait_for_claim`. A claim places the run's configuration, secrets and
the rest, and :data:`CLAIMED` last: the proxy loads its policy from them, the
entry point starts the other daemons from them, and the bundle says
``bottle-bundle: ready`` as a cold one does. The packet filter was set when
the bundle started (and again by the backend before the claim, should the
run's rules differ).

Waiting is polling a file every :data:`POLL` seconds: the daemons run as
other users than the entry point, so no signal reaches them all, and a file
placed by the engine needs nothing else.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

POOLED = Path("/etc/bottle/pooled")
CLAIMED = Path("/etc/bottle/claimed")
#: Written by the proxy (as the bundle user, in its home) once it waits for the claim.
PROXY_WAITING = Path("/var/lib/bottle/proxy-waiting")
POOLED_LINE = "bottle-bundle: pooled"
POLL = 0.02


def is_pooled() -> bool:
    """Whether this bundle was started for a pool and has not been claimed yet."""
    return POOLED.exists() and not CLAIMED.exists()


def wait_in_proxy() -> None:
    """In the proxy, before its addons read the configuration: say it waits, then wait for the claim."""
    if not is_pooled():
        return
    PROXY_WAITING.write_text("waiting\n", encoding="utf-8")
    while not CLAIMED.exists():
        time.sleep(POLL)


def wait_for_claim(proxy) -> None:
    """In the entry point: say ``pooled`` once the proxy waits, then wait for the claim.

    Exits non-zero when the proxy (``proxy``, a Popen) ends meanwhile, so a
    broken pooled bottle shows as a stopped bundle and is never handed over.
    """
    said = False
    while not CLAIMED.exists():
        if proxy.poll() is not None:
            print(f"bottle-bundle: proxy exited ({proxy.returncode}) while pooled; stopping", file=sys.stderr,
                  flush=True)
            sys.exit(1)
        if not said and PROXY_WAITING.exists():
            print(POOLED_LINE, flush=True)
            said = True
        time.sleep(POLL)


def proxy_inputs(config: dict) -> tuple:
    """What the proxy's command line is made of: a claim may not change these once the proxy has started."""
    return (config["proxy"]["listen_host"], int(config["proxy"]["port"]), int(config["egress"]["port"]),
            config.get("upstream_ca"))
