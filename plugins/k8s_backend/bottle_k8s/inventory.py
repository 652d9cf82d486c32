"""Bottles on the cluster by their labels: list, stop, gc, the supervisor's control client in a bundle, and
``bottle home``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from bottle_core.errors import UsageError
from bottle_core.plan import mark_ended
from bottle_core.sandbox import ExecResult

from . import labels, manifests, settings
from .cluster import core, networking

#: How long a removal waits for the pods to be gone (their containers get a second to stop).
GONE_TIMEOUT = 60.0


def list_bottles(namespace: str | None = None) -> list[dict]:
    """One row per agent pod."""
    namespace = namespace or settings.namespace()
    rows = []
    for pod in core().list_namespaced_pod(namespace, label_selector=labels.selector(role="agent")).items:
        tags, notes = pod.metadata.labels or {}, pod.metadata.annotations or {}
        rows.append({"slug": tags.get(labels.SLUG), "agent": tags.get(labels.AGENT), "backend": "k8s",
                     "started": float(notes.get(labels.STARTED) or 0), "state": (pod.status.phase or "").lower(),
                     "owner_alive": labels.owner_alive(notes)})
    return sorted(rows, key=lambda row: row["started"])


def remove_slug(slug: str, namespace: str | None = None, *, ended: bool = True) -> list[str]:
    """Delete every object labelled with ``slug`` (pods, policies, secrets, config maps), wait for the pods to go;
    returns what was removed. ``ended`` marks its state dir ended (stop, gc, the reaper; a launch's own teardown
    leaves that to core)."""
    namespace = namespace or settings.namespace()
    api, net = core(), networking()
    selector = labels.selector(slug=slug)
    removed = []
    pods = api.list_namespaced_pod(namespace, label_selector=selector).items
    for kind, items, delete in (
        ("networkpolicy", net.list_namespaced_network_policy(namespace, label_selector=selector).items,
         net.delete_namespaced_network_policy),
        ("pod", pods, lambda name, ns: api.delete_namespaced_pod(name, ns, grace_period_seconds=1)),
        ("secret", api.list_namespaced_secret(namespace, label_selector=selector).items,
         api.delete_namespaced_secret),
        ("configmap", api.list_namespaced_config_map(namespace, label_selector=selector).items,
         api.delete_namespaced_config_map),
    ):
        for item in items:
            if _delete(delete, item.metadata.name, namespace):
                removed.append(f"{kind} {item.metadata.name}")
    if ended:
        _mark_ended(pods)
    wait_gone(namespace, selector)
    return removed


def stopped(pod) -> bool:
    """Whether every container of the pod has ended (or never started)."""
    states = [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
    return all(s.state.running is None for s in states)


def wait_gone(namespace: str, selector: str, timeout: float = GONE_TIMEOUT) -> None:
    """Until no pod matches ``selector``. A pod whose containers have all stopped is then removed from the API
    at once: the kubelet of some versions (1.20) leaves such a pod's object for up to a minute more."""
    api = core()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = api.list_namespaced_pod(namespace, label_selector=selector).items
        if not left:
            return
        for pod in left:
            if pod.metadata.deletion_timestamp is not None and stopped(pod):
                _delete(lambda name, ns: api.delete_namespaced_pod(name, ns, grace_period_seconds=0),
                        pod.metadata.name, namespace)
        time.sleep(0.2)


def _delete(delete, name: str, namespace: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        delete(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False  # gone meanwhile
        raise
    return True


def stop_bottle(slug: str) -> bool:
    """Remove bottle ``slug``, bringing home first what its gate accepted (as the end of its run would)."""
    import sys

    try:
        for record in bring_home(slug):
            print(f"bottle: {describe(record)}", file=sys.stderr)
    except UsageError:
        pass  # not running (any more): nothing to bring
    except Exception as exc:  # noqa: BLE001 - the removal must still run
        print(f"bottle: git: could not bring the gate's refs home from bottle {slug}: {exc}", file=sys.stderr)
    return bool(remove_slug(slug))


def bring_home(slug: str, namespace: str | None = None) -> list[dict]:
    """``bottle home``: land now what the gate of running bottle ``slug`` accepted (see :mod:`.home`)."""
    from bottle_core.logs import find_state_dir
    from bottle_core.plan import Plan

    from . import home

    bundle = _running_bundle(slug, namespace or settings.namespace())
    plan = Plan.read(find_state_dir(slug) / "plan.json")
    if plan.slug != slug or not home.was_lent(plan):
        return []  # no remote of it lives on this machine: the gate pushes nowhere that needs bringing home
    return home.bring_home(plan, bundle)


def describe(record: dict) -> str:
    from .home import describe as text

    return text(record)


def collect_garbage(namespace: str | None = None) -> list[str]:
    """Remove the objects of bottles whose owning ``bottle`` process (on this host) is gone."""
    namespace = namespace or settings.namespace()
    api, net = core(), networking()
    selector = labels.selector()
    dead = set()
    for items in (api.list_namespaced_pod(namespace, label_selector=selector).items,
                  net.list_namespaced_network_policy(namespace, label_selector=selector).items,
                  api.list_namespaced_secret(namespace, label_selector=selector).items,
                  api.list_namespaced_config_map(namespace, label_selector=selector).items):
        for item in items:
            if not labels.owner_alive(item.metadata.annotations):
                dead.add((item.metadata.labels or {}).get(labels.SLUG))
    removed = []
    for slug in sorted(s for s in dead if s):
        removed += remove_slug(slug, namespace)
    return removed


def exec_in_bundle(slug: str, argv: Sequence[str], namespace: str | None = None) -> ExecResult:
    """``bottle pending``/``approve``/``deny``: run ``argv`` in bottle ``slug``'s bundle, as the bundle's user."""
    from bottle_core.errors import BottleRuntimeError

    bundle = _running_bundle(slug, namespace or settings.namespace())
    try:
        return bundle.exec(list(argv), user="bundle")
    except BottleRuntimeError as exc:
        raise UsageError(f"bottle {slug!r} is no longer running ({exc.message})") from None


def _running_bundle(slug: str, namespace: str):
    """The bundle of running bottle ``slug``; a usage error when it runs no more."""
    from .bundle import PodBundle

    found = core().list_namespaced_pod(namespace, label_selector=labels.selector(slug=slug, role="bundle")).items
    if not found or found[0].status.phase != "Running":
        raise UsageError(f"no running bottle {slug!r}", hint="see `bottle ls`")
    return PodBundle(manifests.pod_name(slug, "bundle"), namespace, slug)


def _mark_ended(pods) -> None:
    for pod in pods:
        notes, tags = pod.metadata.annotations or {}, pod.metadata.labels or {}
        state_dir = notes.get(labels.STATE_DIR)
        if state_dir and Path(state_dir).name == tags.get(labels.SLUG):
            mark_ended(state_dir)
