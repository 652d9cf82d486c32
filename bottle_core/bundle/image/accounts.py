"""The bundle's users, one per daemon: as its entry point runs them and as its packet filter names them.

One place decides who each daemon runs as, so the filter's rules always name
the uids the daemons really have.
"""

from __future__ import annotations

import pwd

PROXY_USER, EGRESS_USER, GATE_USER = "bundle", "egress", "gate"


def account(name: str) -> tuple[int, int]:
    """``(uid, gid)`` of the image's user ``name``."""
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def gate_account(config: dict) -> tuple[int, int]:
    """The git gate's ``(uid, gid)``: the owner of its host repositories (``run_as``), else the ``gate`` user."""
    run_as = config["git_gate"].get("run_as")
    return (int(run_as[0]), int(run_as[1])) if run_as else account(GATE_USER)
