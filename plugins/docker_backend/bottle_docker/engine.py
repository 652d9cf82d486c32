"""Talking to the Docker engine: one client, and a cheap availability check."""

from __future__ import annotations

import functools
import os


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@functools.cache
def client():
    """The docker SDK client for the engine in DOCKER_HOST (or the default socket)."""
    import docker

    return docker.from_env(timeout=120)


def availability() -> str | None:
    """None when the engine answers a ping, else why not and what to do."""
    try:
        client().ping()
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        detail = str(exc).splitlines()[0][:160]
        return f"no Docker engine answers at {engine_url()} ({detail}); start dockerd or set DOCKER_HOST"
    return None
