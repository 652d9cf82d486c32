"""The bundle's bridge for a smol bottle: a subnet picked like the docker backend picks its bottle network.

Unlike the docker backend's network, this bridge must be routable from the
host: smolvm's host-side gateway opens the microVM's connections from the
host, so the host keeps its address on the bridge. It is still ``internal``,
so the bundle gets no way out through it.
"""

from __future__ import annotations

import ipaddress

from bottle_docker import sidecar


def engine_networks() -> list[dict]:
    """The Docker engine's network list; empty when no engine answers."""
    try:
        return sidecar.engine_networks()
    except Exception:  # no engine, no socket, no SDK: nothing to avoid there
        return []


def engine_subnets(networks: list[dict] | None = None) -> list[ipaddress.IPv4Network]:
    """IPv4 subnets of the Docker engine's networks; empty when no engine answers."""
    return sidecar.engine_subnets(engine_networks() if networks is None else networks)
