"""Removing a bottle's engine resources: used by a launch's teardown, ``bottle stop`` and ``bottle gc``.

A launch's teardown does not make the user wait for the engine: it hands the
removal to a process of its own (:func:`remove_detached`, a new session, so a
Ctrl-C aimed at ``bottle`` does not reach it) and returns. Should that process
be cut short, what it left carries its bottle's labels and an owner that has
ended, so ``bottle gc`` (and the reaper, for an owner that died first)
removes it.

Usage (by :func:`remove_detached` only)::

    python -m bottle_docker.removal SLUG '{"containers": [...], "networks": [...]}'
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def remove_resources(client, containers: list[str], networks: list[str]) -> list[str]:
    """Force-remove containers, then networks; returns what was removed. Missing ones are fine.

    ``client``: the SDK's or the raw one (:class:`.engine.RawClient`).
    """
    def remove(kind: str, name: str) -> str | None:
        try:
            if kind == "container":
                client.api.remove_container(name, force=True, v=True)
            else:
                client.api.remove_network(name)
        except Exception as exc:
            if not hasattr(exc, "status_code") and not isinstance(exc, OSError):
                raise  # not an engine's answer (the SDK's errors and the raw client's have a status)
            return None  # already gone, or a removal in progress that gc will finish
        return f"{kind} {name[:12] if kind == 'container' else name}"

    # Containers first (a network with members cannot go), each group in parallel.
    removed = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for kind, names in (("container", containers), ("network", networks)):
            removed += [r for r in pool.map(lambda n, k=kind: remove(k, n), names) if r]
    return removed


def remove_labelled(client, slug: str) -> tuple[list[dict], list[dict]]:
    """Remove every container and network labelled with bottle ``slug``; returns their engine records."""
    from .labels import SLUG

    containers = client.api.containers(all=True, filters={"label": f"{SLUG}={slug}"})
    networks = client.api.networks(filters={"label": f"{SLUG}={slug}"})
    remove_resources(client, [c["Id"] for c in containers], [n["Name"] for n in networks])
    return containers, networks


def remove_detached(client, slug: str, containers: list[str], networks: list[str]) -> subprocess.Popen | None:
    """Remove the resources in a process of their own and return at once; removed here if it cannot start."""
    what = json.dumps({"containers": containers, "networks": networks})
    try:  # the slug in its command line says, to `ps`, which bottle it is removing
        return subprocess.Popen([sys.executable, "-m", "bottle_docker.removal", slug, what],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        remove_resources(client, containers, networks)
        return None


def main(argv: list[str]) -> int:
    from .engine import client, raw_client, raw_supported

    _slug, what = argv
    wanted = json.loads(what)
    # Raw engine calls where they reach the engine: no SDK to import (~0.3 s of CPU each time, which many
    # bottles ending at once on a small machine feel).
    remove_resources(raw_client() if raw_supported() else client(), wanted["containers"], wanted["networks"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
