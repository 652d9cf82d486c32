"""Commands in a pod's container through the exec API (websockets), to completion.

An exec on Kubernetes has no user, working folder or environment of its own,
and the websocket protocol of the clusters this was tested on (1.20) cannot
close stdin: so the command is wrapped -- ``env -C`` for the folder and
variables, and, with input, ``head -c N`` ahead of it, which ends the
command's input after exactly the bytes sent. Files travel the same way, as a
tar stream into ``tar -x``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

import yaml

from bottle_core.errors import BottleRuntimeError
from bottle_core.sandbox import ExecResult

#: Input is sent in frames of this size.
CHUNK = 1024 * 1024


def wrapped(argv: Sequence[str], *, env: Mapping[str, str] | None = None, workdir: str | None = None,
            stdin_size: int | None = None) -> list[str]:
    """``argv`` as the exec runs it: in ``workdir`` with ``env`` added, fed exactly ``stdin_size`` bytes of input."""
    inner = list(argv)
    if env or workdir:
        inner = ["env", *(["-C", workdir] if workdir else []), *(f"{k}={v}" for k, v in (env or {}).items()),
                 *inner]
    if stdin_size is not None:
        inner = ["sh", "-c", 'head -c "$0" | "$@"', str(stdin_size), *inner]
    return inner


def exec_in(pod: str, container: str, argv: Sequence[str], *, namespace: str, stdin: bytes | None = None,
            env: Mapping[str, str] | None = None, workdir: str | None = None,
            stdout_limit: int | None = None) -> ExecResult:
    """Run ``argv`` in ``container`` of ``pod`` to completion; stdout and stderr kept apart.

    ``stdout_limit``: a command whose output grows past it is cut off with an error (what a pod sends is
    held in memory here).
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import stream

    from .cluster import api_client

    command = wrapped(argv, env=env, workdir=workdir, stdin_size=None if stdin is None else len(stdin))
    # A client of its own: ``stream`` swaps the client's request method for a websocket one while it runs, which
    # would turn another thread's ordinary call on a shared client (the log follower, a concurrent stop) into one.
    own = client.ApiClient(api_client().configuration)
    try:
        ws = stream(client.CoreV1Api(own).connect_get_namespaced_pod_exec, pod, namespace, container=container,
                    command=command, stdin=stdin is not None, stdout=True, stderr=True, tty=False,
                    _preload_content=False, binary=True)
    except ApiException as exc:
        own.close()
        raise BottleRuntimeError(f"cannot run `{shlex.join(argv)}` in pod {pod}/{container}: "
                                 f"{exc.status} {exc.reason}: {api_message(exc.body)}") from None
    except BaseException:
        own.close()
        raise
    out, err = bytearray(), bytearray()
    try:
        if stdin:
            for start in range(0, len(stdin), CHUNK):
                ws.write_stdin(stdin[start:start + CHUNK])
                _drain(ws, out, err)
        while ws.is_open():
            ws.update(timeout=1)
            _drain(ws, out, err)
            if stdout_limit is not None and len(out) > stdout_limit:
                raise BottleRuntimeError(f"`{shlex.join(argv)}` in pod {pod}/{container} sent more than "
                                         f"{stdout_limit} bytes: cut off")
        _drain(ws, out, err)
        status = ws.read_channel(3)
    finally:
        ws.close()
        own.close()
    return ExecResult(returncode=exit_code(status, argv), stdout=bytes(out), stderr=bytes(err))


def _drain(ws, out: bytearray, err: bytearray) -> None:
    if ws.peek_stdout():
        out.extend(ws.read_stdout())
    if ws.peek_stderr():
        err.extend(ws.read_stderr())


def exit_code(status: bytes | str, argv: Sequence[str]) -> int:
    """The exit code in the exec's status channel (``Success``, or ``NonZeroExitCode`` with the code)."""
    if not status:
        raise BottleRuntimeError(f"`{shlex.join(argv)}`: the exec ended without a status (the pod went away?)")
    parsed = yaml.safe_load(status)
    if parsed.get("status") == "Success":
        return 0
    for cause in (parsed.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause["message"])
    raise BottleRuntimeError(f"`{shlex.join(argv)}` could not run: {parsed.get('message') or parsed}")


def api_message(body) -> str:
    """The ``message`` of an API error's body (the body itself when it is not JSON)."""
    try:
        import json

        return json.loads(body).get("message", body)
    except Exception:  # noqa: BLE001 - not JSON: show it as it is
        return str(body)


def untar_command(dest: str) -> list[str]:
    """Unpack a tar stream on stdin into ``dest``, owned by whoever runs it."""
    return ["tar", "-x", "--no-same-owner", "-C", dest]
