"""Commands and files through the engine API: run a command in a container, read a path out of one.

Each takes the SDK's client or the raw one (:class:`.engine.RawClient`): both have ``client.api``.
"""

from __future__ import annotations

from collections.abc import Mapping

from bottle_core.errors import BottleRuntimeError
from bottle_core.sandbox import ExecResult

from .engine import frames, not_found


def read_archive(client, container_id: str, src: str) -> bytes:
    """A tar stream of ``src`` in a container, as bytes."""
    try:
        chunks, _stat = client.api.get_archive(container_id, src)
    except Exception as exc:
        if not_found(exc):
            raise BottleRuntimeError(f"no such path in the bottle: {src}") from None
        raise
    return b"".join(chunks)


def exec_in(client, container_id: str, argv: list[str], *, user: str, env: Mapping[str, str] | None,
            workdir: str, stdin: bytes | None) -> ExecResult:
    """Run argv in a container to completion; stdout and stderr kept apart."""
    api = client.api
    exec_id = api.exec_create(container_id, argv, user=user, environment=dict(env or {}), workdir=workdir,
                              stdin=stdin is not None, stdout=True, stderr=True)["Id"]
    if stdin is None:
        stdout, stderr = api.exec_start(exec_id, demux=True)
    else:
        stdout, stderr = _exec_with_stdin(api, exec_id, stdin)
    code = api.exec_inspect(exec_id)["ExitCode"]
    return ExecResult(returncode=code if code is not None else -1, stdout=stdout or b"", stderr=stderr or b"")


def _exec_with_stdin(api, exec_id: str, data: bytes) -> tuple[bytes, bytes]:
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)  # the SDK hands a socket wrapper; the raw client a socket
    raw.sendall(data)
    raw.shutdown(1)  # SHUT_WR: the command sees end of input
    out, err = bytearray(), bytearray()
    for stream, chunk in frames(raw.recv):
        (err if stream == 2 else out).extend(chunk)
    sock.close()
    return bytes(out), bytes(err)
