"""The agent's seccomp profile: the engine's default, io_uring refused, nothing else changed."""

from __future__ import annotations

import json

from bottle_docker import seccomp


def test_io_uring_is_refused_and_every_other_rule_of_the_default_kept():
    default, agent = seccomp.engine_default(), json.loads(seccomp.agent_profile())
    assert agent["defaultAction"] == default["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = [rule for rule in agent["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"]
    assert not any(name in seccomp.DENIED for rule in allowed for name in rule["names"])
    assert agent["syscalls"][-1] == {"names": list(seccomp.DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    kept = [{**rule, "names": [n for n in rule["names"] if n not in seccomp.DENIED]} for rule in default["syscalls"]]
    assert agent["syscalls"][:-1] == kept
    assert any("io_uring_setup" in rule["names"] for rule in default["syscalls"])  # the engine's default allows it
