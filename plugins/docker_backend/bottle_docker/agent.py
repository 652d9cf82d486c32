"""The agent's container: no capability, pinned on the bottle network, and its default route removed."""

from __future__ import annotations

from bottle_core import agent as agent_sandbox
from bottle_core.plan import Plan

from . import labels, seccomp
from .oneshot import run_one_shot

#: IPv6 off in the agent, explicitly: no address, not even loopback's, and no IPv6 socket reaches anything.
AGENT_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
                 "net.ipv6.conf.lo.disable_ipv6": "1"}


#: A pooled agent's waiting processes (the agent image's ``pooled-agent``): its main process as root, and the
#: agent user's side, each waiting for the claimed run's provisioning round (see :mod:`.pool`).
POOLED_AGENT = "/usr/local/lib/bottle/pooled-agent"
POOLED_LINE = b"bottle-agent: pooled"


def create_agent(client, plan: Plan, image: str, created: list[str], *, pooled: bool = False) -> str:
    """Create (not start) the agent container; its ID goes into ``created`` at once.

    A pooled agent's main process is the root side of ``pooled-agent`` (without any capability, as every
    process of the agent); a cold one's sleeps as the agent user.
    """
    api, res = client.api, plan.resources
    main = ([POOLED_AGENT, "main"], "0:0") if pooled else (["sleep", "infinity"], f"{plan.guest.uid}:{plan.guest.uid}")
    agent = api.create_container(
        # entrypoint=[]: an image's own entry point (a manifest may name the image) never runs in a bottle.
        image, command=main[0], entrypoint=[], name=f"bottle-{plan.slug}-agent",
        user=main[1], working_dir=plan.guest.workspace,
        environment=agent_sandbox.environment(plan), labels=labels.for_bottle(plan, "agent"), detach=True,
        host_config=api.create_host_config(
            cap_drop=["ALL"], init=True,
            # The engine's default seccomp profile, io_uring denied (seccomp.py).
            security_opt=["no-new-privileges:true", f"seccomp={seccomp.agent_profile()}"],
            mem_limit=res.memory_bytes, memswap_limit=res.memory_bytes,
            nano_cpus=int(res.cpus * 1e9), pids_limit=res.pids,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"},
            network_mode=plan.network.name,
            sysctls=AGENT_SYSCTLS,
            # Names are the proxy's business: the engine's resolver may only ever forward to the bundle,
            # which serves no DNS, so no lookup can carry data out (older engines forwarded from the host).
            dns=[plan.network.bundle_ip],
        ),
        networking_config=api.create_networking_config(
            {plan.network.name: api.create_endpoint_config(ipv4_address=plan.network.agent_ip)}
        ),
    )["Id"]
    created.append(agent)
    return agent


def create_route_fixer(client, plan: Plan, agent: str, image: str, created: list[str]) -> str:
    """A one-shot container that will delete the agent's default route (see :func:`drop_default_route`)."""
    api = client.api
    fixer = api.create_container(
        image, command=["ip", "route", "del", "default"], user="0", name=f"bottle-{plan.slug}-netfix",
        labels=labels.for_bottle(plan, "netfix"), entrypoint=[],
        host_config=api.create_host_config(network_mode=f"container:{agent}", cap_drop=["ALL"],
                                           cap_add=["NET_ADMIN"], security_opt=["no-new-privileges:true"]),
    )["Id"]
    created.append(fixer)
    return fixer


def drop_default_route(client, fixer: str) -> None:
    """Remove the agent's default route, so the bundle on its own subnet is all it can address.

    The engine gives every bridge network a gateway route, even an internal
    one whose gateway address exists nowhere. A one-shot container that
    shares the agent's network namespace (and alone holds NET_ADMIN) deletes
    it; the agent itself never has a capability.
    """
    run_one_shot(client, fixer, "remove the agent's default route")


def start_pooled_side(client, plan: Plan, agent: str) -> None:
    """Start the agent user's side of a pooled agent's waiting processes (one exec, at pool time: never on a
    claim's path), and wait until both sides have met and say they wait."""
    import time

    from bottle_core.errors import BottleRuntimeError

    api = client.api
    side = api.exec_create(agent, [POOLED_AGENT, "agent"], user=str(plan.guest.uid), workdir="/", stdout=False,
                           stderr=False)["Id"]
    api.exec_start(side, detach=True)
    deadline = time.monotonic() + 60
    while POOLED_LINE not in api.logs(agent, stdout=True, stderr=True):
        if time.monotonic() > deadline or not api.inspect_container(agent)["State"]["Running"]:
            raise BottleRuntimeError(f"the pooled agent of bottle {plan.slug} did not start waiting for its run")
        time.sleep(0.05)
