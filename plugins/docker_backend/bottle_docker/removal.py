"""Removing a bottle's engine resources: used by a launch's teardown, ``bottle stop`` and ``bottle gc``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def remove_resources(client, containers: list[str], networks: list[str]) -> list[str]:
    """Force-remove containers, then networks; returns what was removed. Missing ones are fine."""
    from docker.errors import APIError, NotFound

    def remove(kind: str, name: str) -> str | None:
        try:
            if kind == "container":
                client.api.remove_container(name, force=True, v=True)
            else:
                client.api.remove_network(name)
        except (NotFound, APIError):
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
