"""The agent's seccomp profile: the engine's default, with io_uring denied.

``seccomp_default.json`` is Docker's own default profile, unchanged: moby's
``profiles/seccomp/default.json`` as Debian ships it for engine 20.10.24
(package ``golang-github-docker-docker-dev`` 20.10.24+dfsg1-1+deb12u1,
Apache-2.0). That release still allows the ``io_uring_*`` calls, whose
requests run in kernel workers that other syscall filters never see, and
which have been a steady source of kernel privilege escalations; later
engines deny them by default. The agent's profile is that file with those
three calls taken out of every rule that allows them and refused with
``ENOSYS`` (as by a kernel without io_uring), so runtimes that probe for
io_uring (libuv, in Node) fall back to ordinary system calls. Every other
rule of the default, conditional ones included, is kept as the engine wrote it.
"""

from __future__ import annotations

import copy
import errno
import json
from functools import cache
from importlib.resources import files

#: System calls the agent may never make, whatever the engine's default allows.
DENIED = ("io_uring_setup", "io_uring_enter", "io_uring_register")


def engine_default() -> dict:
    """Docker's default seccomp profile (see the module's docstring for where it comes from)."""
    return json.loads(files(__package__).joinpath("seccomp_default.json").read_text(encoding="utf-8"))


def without(profile: dict, names: tuple[str, ...]) -> dict:
    """``profile`` with ``names`` removed from every rule and refused with ENOSYS by a rule of their own."""
    profile = copy.deepcopy(profile)
    rules = []
    for rule in profile["syscalls"]:
        kept = [name for name in rule.get("names", []) if name not in names]
        if kept or not rule.get("names"):
            rules.append({**rule, "names": kept} if rule.get("names") else rule)
    rules.append({"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    profile["syscalls"] = rules
    return profile


@cache
def agent_profile() -> str:
    """The agent's profile as the JSON text the engine takes in ``--security-opt seccomp=...``."""
    return json.dumps(without(engine_default(), DENIED), separators=(",", ":"))
