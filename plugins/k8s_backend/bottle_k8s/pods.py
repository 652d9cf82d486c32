"""Waiting on pods: for an address, for a container to run, with the pod's own words when it fails."""

from __future__ import annotations

import time
from collections.abc import Callable

from bottle_core.errors import BottleRuntimeError

from .cluster import core

POLL = 0.1
#: Waiting reasons that will not clear by waiting.
STUCK = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
         "CreateContainerError", "RunContainerError"}


def read(name: str, namespace: str):
    """The pod's current object (None once it is gone)."""
    from kubernetes.client.rest import ApiException

    try:
        return core().read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def problem(pod) -> str | None:
    """Why the pod will not come up, when it will not: a container stuck or ended badly, the pod failed."""
    if pod is None:
        return "the pod is gone"
    status = pod.status
    for state in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        waiting, done = state.state.waiting, state.state.terminated
        if waiting is not None and waiting.reason in STUCK:
            return f"container {state.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
        if done is not None and done.exit_code != 0:
            return f"container {state.name} exited {done.exit_code} ({done.reason or 'error'})"
    if status.phase in ("Failed", "Succeeded"):
        return f"the pod {status.phase.lower()}: {status.reason or ''} {status.message or ''}".strip()
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False" and condition.reason == "Unschedulable":
            return f"unschedulable: {condition.message}"
    return None


def wait_for(name: str, namespace: str, what: str, done: Callable[[object], object], timeout: float,
             hint: str | None = None):
    """Poll the pod until ``done(pod)`` is truthy (returned); fail at once with the pod's reason when it will not."""
    deadline = time.monotonic() + timeout
    while True:
        pod = read(name, namespace)
        if pod is not None:
            found = done(pod)
            if found:
                return found
        trouble = problem(pod)
        if trouble is not None or time.monotonic() > deadline:
            raise BottleRuntimeError(f"pod {name} did not {what}: {trouble or f'not within {timeout:.0f} s'}",
                                     hint=hint)
        time.sleep(POLL)


def ip_of(pod) -> str | None:
    return pod.status.pod_ip


def running(container: str, *, init: bool = False) -> Callable[[object], bool]:
    """A ``done`` for :func:`wait_for`: the named (init) container runs."""
    def check(pod) -> bool:
        states = pod.status.init_container_statuses if init else pod.status.container_statuses
        return any(s.name == container and s.state.running is not None for s in states or [])

    return check


def state_of(pod, container: str):
    """The container's state (running/waiting/terminated), or None."""
    for state in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
        if state.name == container:
            return state.state
    return None
