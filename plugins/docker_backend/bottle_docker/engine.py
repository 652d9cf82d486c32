"""Talking to the Docker engine: one SDK client, and an availability check that avoids importing it."""

from __future__ import annotations

import functools
import http.client
import os
import socket
from urllib.parse import urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


@functools.cache
def client():
    """The docker SDK client for the engine in DOCKER_HOST (or the default socket)."""
    import docker

    return docker.from_env(timeout=120)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _ping(url: str, timeout: float = 3.0) -> None:
    # A raw GET /_ping: the SDK (and requests under it) costs ~100 ms to import,
    # which `bottle backends` cannot afford. TLS hosts fall back to the SDK.
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        conn: http.client.HTTPConnection = _UnixConnection(parsed.path, timeout)
    elif parsed.scheme in ("tcp", "http") and not os.environ.get("DOCKER_TLS_VERIFY"):
        conn = http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port or 2375, timeout=timeout)
    else:
        client().ping()
        return
    try:
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"engine answered HTTP {response.status}")
    finally:
        conn.close()


def availability() -> str | None:
    """None when the engine answers a ping, else why not and what to do."""
    url = engine_url()
    try:
        _ping(url)
    except Exception as exc:  # "no engine" shows up as several unrelated exception types
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return f"no Docker engine answers at {url} ({detail}); start dockerd or set DOCKER_HOST"
    return None
