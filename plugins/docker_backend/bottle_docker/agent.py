"""The agent's container: no capability, pinned on the bottle network, and its default route removed."""

from __future__ import annotations

import threading

from bottle_core import agent as agent_sandbox
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan

from . import labels
from .removal import remove_resources


def create_agent(client, plan: Plan, image: str, created: list[str]) -> str:
    """Create (not start) the agent container; its ID goes into ``created`` at once."""
    api, res = client.api, plan.resources
    agent = api.create_container(
        image, command=["sleep", "infinity"], name=f"bottle-{plan.slug}-agent",
        user=f"{plan.guest.uid}:{plan.guest.uid}", working_dir=plan.guest.workspace,
        environment=agent_sandbox.environment(plan), labels=labels.for_bottle(plan, "agent"), detach=True,
        host_config=api.create_host_config(
            cap_drop=["ALL"], security_opt=["no-new-privileges:true"], init=True,
            mem_limit=res.memory_bytes, memswap_limit=res.memory_bytes,
            nano_cpus=int(res.cpus * 1e9), pids_limit=res.pids,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"},
            network_mode=plan.network.name,
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
    api = client.api
    api.start(fixer)
    status = api.wait(fixer, timeout=30).get("StatusCode")
    if status != 0:
        words = api.logs(fixer).decode("utf-8", "replace").strip()
        raise BottleRuntimeError(f"could not remove the agent's default route ({words or f'exit {status}'})")
    # Its work is done: remove it now, off the teardown's path (teardown still sweeps it if this loses).
    threading.Thread(target=remove_resources, args=(client, [fixer], []), daemon=True).start()
