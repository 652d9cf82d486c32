"""Commands and files through the engine API: run a command in a container, read a path out of one."""

from __future__ import annotations

from collections.abc import Mapping

from bottle_core.errors import BottleRuntimeError
from bottle_core.sandbox import ExecResult


def read_archive(client, container_id: str, src: str) -> bytes:
    """A tar stream of ``src`` in a container, as bytes."""
    from docker.errors import NotFound

    try:
        chunks, _stat = client.api.get_archive(container_id, src)
    except NotFound:
        raise BottleRuntimeError(f"no such path in the bottle: {src}") from None
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
    from docker.utils.socket import frames_iter, STDOUT

    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    raw.sendall(data)
    raw.shutdown(1)  # SHUT_WR: the command sees end of input
    out, err = bytearray(), bytearray()
    for stream, chunk in frames_iter(sock, tty=False):
        (out if stream == STDOUT else err).extend(chunk)
    sock.close()
    return bytes(out), bytes(err)
