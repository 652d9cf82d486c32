"""Talking to the Docker engine: one SDK client, and raw calls on its socket that avoid importing it.

The raw calls (:class:`RawAPI`) serve the availability check, a claimed pooled bottle's run and every
teardown's removal; the SDK serves the rest (creating containers and networks, building images).
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import socket
import struct
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


@functools.cache
def client():
    """The docker SDK client for the engine in DOCKER_HOST (or the default socket)."""
    import docker

    return docker.from_env(timeout=120)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _ping(url: str, timeout: float = 3.0) -> None:
    # A raw GET /_ping: the SDK (and requests under it) costs ~100 ms to import, which `bottle backends`
    # cannot afford. Engines the raw calls cannot reach (SSH) fall back to the SDK.
    if not raw_supported(url):
        client().ping()
        return
    conn = _connection(url, timeout)
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


# -- raw engine calls ---------------------------------------------------------------------------------------
# The SDK (and requests under it) costs ~0.3 s of CPU to import. A claimed pooled bottle's run and a
# teardown make only a handful of engine calls; these make them on the engine's socket with the standard
# library. :class:`RawAPI` answers to the names and arguments of the SDK's ``APIClient`` for the calls it
# has, so the modules built on ``client.api`` (streams, the bundle handle) take either.


class EngineError(Exception):
    """An engine call answered with an error status (``status_code``, as the SDK's errors have it)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.explanation = message


def not_found(exc: BaseException) -> bool:
    """Whether an engine error (raw or the SDK's) says the container, image, exec or path does not exist."""
    if getattr(exc, "status_code", None) == 404:
        return True
    errors = sys.modules.get("docker.errors")  # only an SDK already imported can have raised its own
    return errors is not None and isinstance(exc, errors.NotFound)


def raw_supported(url: str | None = None) -> bool:
    """Whether :class:`RawAPI` can reach the engine at ``url`` (a Unix socket, or plain or TLS TCP)."""
    return urlparse(url or engine_url()).scheme in ("unix", "tcp", "http", "https")


def _connection(url: str, timeout: float | None) -> http.client.HTTPConnection:
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return _UnixConnection(parsed.path, timeout)
    host, port = parsed.hostname or "localhost", parsed.port
    if parsed.scheme == "https" or os.environ.get("DOCKER_TLS_VERIFY"):
        import ssl

        certs = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        context.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
        return http.client.HTTPSConnection(host, port or 2376, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port or 2375, timeout=timeout)


def frames(read) -> Iterator[tuple[int, bytes]]:
    """The (stream, payload) frames of a multiplexed engine stream (1 stdout, 2 stderr), until it ends.

    ``read(n)`` returns up to n bytes, b"" at the end. Each frame: stream byte, three zero bytes, a 32-bit
    big-endian length, the payload.
    """
    buffer = b""
    while True:
        while len(buffer) < 8:
            chunk = read(65536)
            if not chunk:
                return
            buffer += chunk
        stream, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
        while len(buffer) < 8 + size:
            chunk = read(65536)
            if not chunk:
                return
            buffer += chunk
        yield stream, buffer[8:8 + size]
        buffer = buffer[8 + size:]


def _filters(filters: dict | None) -> str | None:
    """The engine's form of filters: each value a list of strings (as the SDK sends them)."""
    if not filters:
        return None
    return json.dumps({key: [str(v).lower() if isinstance(v, bool) else str(v)
                             for v in (value if isinstance(value, list) else [value])]
                       for key, value in filters.items()})


class RawAPI:
    """The engine calls a claimed run (and a teardown) makes, on the standard library's HTTP client.

    Each call opens its own connection (calls run from several threads at once); one that streams keeps it
    until the stream ends.
    """

    def __init__(self, url: str | None = None, timeout: float = 120):
        self.url = url or engine_url()
        if not raw_supported(self.url):
            raise EngineError(0, f"no raw engine calls over {self.url} (unix, tcp or https only)")
        self.timeout = timeout

    # -- plumbing ---------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, query: dict | None = None, body: bytes | None = None,
              content_type: str = "application/json", timeout: float | None = -1.0):
        conn = _connection(self.url, self.timeout if timeout == -1.0 else timeout)
        url = path + ("?" + urlencode({k: v for k, v in query.items() if v is not None}) if query else "")
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if response.status >= 400:
            data = response.read()
            conn.close()
            try:
                message = json.loads(data).get("message") or data.decode("utf-8", "replace")
            except ValueError:
                message = data.decode("utf-8", "replace")
            raise EngineError(response.status, f"{method} {path}: {message.strip()}")
        return conn, response

    def _call(self, method: str, path: str, query: dict | None = None, payload=None, body: bytes | None = None,
              content_type: str = "application/json"):
        if payload is not None:
            body = json.dumps(payload).encode()
        conn, response = self._send(method, path, query, body, content_type)
        try:
            data = response.read()
        finally:
            conn.close()
        return json.loads(data) if data and response.getheader("Content-Type", "").startswith("application/json") \
            else data

    @staticmethod
    def _id(name: str) -> str:
        return quote(name, safe="")

    # -- containers ---------------------------------------------------------------------------------------

    def containers(self, all: bool = False, filters: dict | None = None) -> list[dict]:  # noqa: A002 - the SDK's name
        query = {"all": "1" if all else None, "filters": _filters(filters)}
        return self._call("GET", "/containers/json", query)

    def networks(self, names: list[str] | None = None, filters: dict | None = None) -> list[dict]:
        wanted = {**(filters or {}), **({"name": names} if names else {})}
        found = self._call("GET", "/networks", {"filters": _filters(wanted)})
        return [n for n in found if not names or n.get("Name") in names]  # the engine's name filter matches parts

    def inspect_image(self, image: str) -> dict:
        return self._call("GET", f"/images/{self._id(image)}/json")

    def inspect_container(self, container: str) -> dict:
        return self._call("GET", f"/containers/{self._id(container)}/json")

    def put_archive(self, container: str, path: str, data) -> bool:
        body = data if isinstance(data, bytes) else data.read()
        self._call("PUT", f"/containers/{self._id(container)}/archive", {"path": path}, body=body,
                   content_type="application/x-tar")
        return True

    def get_archive(self, container: str, path: str) -> tuple[Iterator[bytes], dict]:
        data = self._call("GET", f"/containers/{self._id(container)}/archive", {"path": path})
        return iter([data]), {}

    def kill(self, container: str, signal: str = "SIGKILL") -> None:
        self._call("POST", f"/containers/{self._id(container)}/kill", {"signal": signal})

    def remove_container(self, container: str, force: bool = False, v: bool = False) -> None:
        self._call("DELETE", f"/containers/{self._id(container)}", {"force": "1" if force else None,
                                                                   "v": "1" if v else None})

    def remove_network(self, network: str) -> None:
        self._call("DELETE", f"/networks/{self._id(network)}")

    def logs(self, container: str, stdout: bool = True, stderr: bool = True, stream: bool = False,
             follow: bool = False, timeout: float | None = None):
        """The container's output (a non-TTY container's): bytes, or with ``stream`` its chunks as they come.

        ``timeout``: when following, how long a wait for more may last (none by default); then
        ``TimeoutError`` (``socket.timeout``).
        """
        query = {"stdout": int(stdout), "stderr": int(stderr), "follow": "1" if follow else None}
        conn, response = self._send("GET", f"/containers/{self._id(container)}/logs", query,
                                    timeout=timeout if follow else -1.0)
        chunks = _closing(conn, (payload for _stream, payload in frames(response.read1)))
        return chunks if stream else b"".join(chunks)

    # -- execs ---------------------------------------------------------------------------------------------

    def exec_create(self, container: str, cmd: list[str], *, user: str = "", environment: dict | None = None,
                    workdir: str | None = None, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                    tty: bool = False) -> dict:
        payload = {"Cmd": cmd, "User": user, "Env": [f"{k}={v}" for k, v in (environment or {}).items()],
                   "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty}
        if workdir:
            payload["WorkingDir"] = workdir
        return self._call("POST", f"/containers/{self._id(container)}/exec", payload=payload)

    def exec_start(self, exec_id: str, *, detach: bool = False, demux: bool = False, socket: bool = False):
        """Start an exec: detached; or its output to the end (``demux``: stdout and stderr apart); or, with
        ``socket``, the connection itself (stdin written to it, frames read from it: :func:`frames`)."""
        path = f"/exec/{self._id(exec_id)}/start"
        if detach:
            self._call("POST", path, payload={"Detach": True, "Tty": False})
            return None
        sock = self._hijack(path, {"Detach": False, "Tty": False})
        if socket:
            return sock
        out, err = bytearray(), bytearray()
        try:
            for stream, payload in frames(sock.recv):
                (err if stream == 2 else out).extend(payload)
        finally:
            sock.close()
        return (bytes(out), bytes(err)) if demux else bytes(out + err)

    def exec_inspect(self, exec_id: str) -> dict:
        return self._call("GET", f"/exec/{self._id(exec_id)}/json")

    def _hijack(self, path: str, payload: dict):
        """POST ``path`` asking for the raw stream; the socket, past the answer's head (what came with it is
        handed back first by its ``recv``)."""
        conn = _connection(self.url, None)
        conn.connect()
        sock = conn.sock
        body = json.dumps(payload).encode()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
                     f"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                raise EngineError(0, f"POST {path}: the engine closed the connection")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status >= 400:
            sock.close()
            raise EngineError(status, f"POST {path}: {rest.decode('utf-8', 'replace').strip()}")
        return _Primed(sock, rest)


class _Primed:
    """A socket whose first bytes were already read: ``recv`` hands them back first."""

    def __init__(self, sock, first: bytes):
        self._sock, self._first = sock, first

    def recv(self, size: int) -> bytes:
        if self._first:
            data, self._first = self._first[:size], self._first[size:]
            return data
        return self._sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self._sock.shutdown(how)

    def close(self) -> None:
        self._sock.close()


def _closing(conn, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        conn.close()


class RawClient:
    """What the modules built on the SDK's client use of it (``client.api``), over :class:`RawAPI`."""

    def __init__(self, url: str | None = None):
        self.api = RawAPI(url)


@functools.cache
def raw_client() -> RawClient:
    """The raw client for the engine in DOCKER_HOST (see :class:`RawAPI`)."""
    return RawClient()


def light_client():
    """The raw client where it reaches the engine, else the SDK's: for code that uses only ``client.api``
    calls both have (planning a bottle, claiming a pooled one)."""
    return raw_client() if raw_supported() else client()
