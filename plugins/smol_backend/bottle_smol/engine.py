"""Running the smolvm CLI: one call per verb, its failures turned into clear errors.

smolvm reports its own failures as one ``Error: <what>`` line on stderr with
exit 1, while ``machine exec`` passes the guest's exit code straight through,
so exit 1 alone is ambiguous. A failure is smolvm's when the last stderr line
is ``Error:`` followed by one of smolvm's own error kinds, or when clap printed
its usage (exit 2).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from bottle_core.errors import BottleRuntimeError
from bottle_core.sandbox import ExecResult

from .binary import STATE_DIR_SETTING, Smolvm, Version, checked_version_problem, version_of

STATE_DIR_ENV = "BOTTLE_SMOLVM_STATE_DIR"
_NOTE = re.compile(rb"^note: no packed assets found for .*$\n?", re.MULTILINE)
_SMOLVM_ERROR = re.compile(
    r"^Error: (vm not found|config operation failed|agent operation failed|kvm not available|kvm permission denied"
    r"|io operation failed|mount source not found|mount operation failed|invalid mount path)"
)
Stdin = bytes | BinaryIO | Iterable[bytes] | None


class SmolvmError(BottleRuntimeError):
    """smolvm itself failed (not the command in the guest); carries its ``Error:`` line."""

    def __init__(self, verb: str, detail: str, returncode: int):
        self.verb = verb
        self.detail = detail
        self.returncode = returncode
        super().__init__(f"smolvm machine {verb} failed: {detail}")


def smolvm_failure(returncode: int, stderr: bytes) -> str | None:
    """The smolvm error text when this outcome is smolvm's own failure, else None (the guest's result)."""
    if returncode == 0:
        return None
    text = stderr.decode("utf-8", "replace")
    if returncode == 2 and "Usage: smolvm" in text:
        return text.strip().splitlines()[0]
    lines = [line for line in text.splitlines() if line.strip()]
    # "kvm not available" may span lines, so the Error: line is looked for from the end.
    for line in reversed(lines[-6:]):
        if _SMOLVM_ERROR.match(line):
            return line[len("Error: "):]
    return None


@dataclass
class Engine:
    """The smolvm CLI, version-aware."""

    binary: Smolvm
    #: smolvm's state root for every call (``--state-dir``); default ``BOTTLE_SMOLVM_STATE_DIR``, else smolvm's own.
    state_dir: str | None = None

    @property
    def version(self) -> Version:
        return version_of(self.binary)

    def check_version(self) -> None:
        """Refuse a smolvm this backend was not checked against (its flags and texts change between releases)."""
        problem = checked_version_problem(self.binary, self.version)
        if problem:
            raise BottleRuntimeError(problem)

    # -- the one place a smolvm child is started ---------------------------------

    def call(self, verb: str, args: Sequence[str], *, stdin: Stdin = None, timeout: float = 120,
             check: bool = True, env: Mapping[str, str] | None = None) -> ExecResult:
        """Run ``smolvm machine <verb> <args>`` to completion; raise :class:`SmolvmError` on smolvm's failures."""
        argv = [self.binary.path, "machine", verb, *self._state_dir(), *args]
        # stdout/stderr go to files, so a large stdin can be streamed without a pipe deadlock.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                        stdout=out, stderr=err, env={**self.binary.child_env(), **(env or {})})
            except OSError as exc:
                raise SmolvmError(verb, f"cannot run {self.binary.path}: {exc}", -1) from None
            try:
                if stdin is not None:
                    _feed(proc, stdin)
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                raise SmolvmError(verb, f"no answer within {timeout:.0f} s", -1) from None
            except BaseException:
                proc.kill()
                proc.wait(timeout=10)
                raise
            out.seek(0)
            err.seek(0)
            result = ExecResult(returncode, out.read(), _NOTE.sub(b"", err.read()))
        failure = smolvm_failure(result.returncode, result.stderr)
        if check and failure is not None:
            raise SmolvmError(verb, failure, result.returncode)
        return result

    def attach(self, verb: str, args: Sequence[str]) -> int:
        """Run ``smolvm machine <verb> <args>`` on this process's own stdin/stdout/stderr; its exit code."""
        argv = [self.binary.path, "machine", verb, *self._state_dir(), *args]
        return subprocess.call(argv, env=self.binary.child_env())

    def _state_dir(self) -> list[str]:
        # An explicit state root keeps a test's (or a user's second) machines apart from the default ones.
        state = self.state_dir or STATE_DIR_SETTING.value()
        return ["--state-dir", state] if state else []

    # -- verbs ----------------------------------------------------------------------

    def create(self, name: str, *, labels: Mapping[str, str], image: str, options: Sequence[str],
               workload: Sequence[str], stdin: Stdin = None, timeout: float = 600) -> None:
        """``machine create --name N --label K=V... --image IMG OPTIONS -- WORKLOAD``."""
        args = ["--name", name]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        args += ["--image", image, *options, "--", *workload]
        self.call("create", args, stdin=stdin, timeout=timeout)

    def start(self, name: str, *, timeout: float = 300) -> None:
        # RUST_LOG=error lets the VMM's last words (say, KVM_EXIT_INTERNAL_ERROR) reach smolvm's Error: line.
        self.call("start", ["--name", name], timeout=timeout, env={"RUST_LOG": os.environ.get("RUST_LOG", "error")})

    def stop(self, name: str, *, timeout: float = 120) -> None:
        self.call("stop", ["--name", name], timeout=timeout)

    def delete(self, name: str, *, timeout: float = 120) -> None:
        # -f always: without it smolvm asks on stdin, and on EOF old versions keep the machine and exit 0.
        self.call("delete", ["--name", name, "-f"], timeout=timeout)

    def status(self, name: str) -> dict | None:
        """The machine's status object (``state``, ``pid``, ``labels``...), or None when there is no such machine."""
        result = self.call("status", ["--name", name, "--json"], check=False, timeout=60)
        failure = smolvm_failure(result.returncode, result.stderr)
        if failure is not None:
            if "not found" in failure:
                return None
            raise SmolvmError("status", failure, result.returncode)
        return json.loads(result.stdout)

    def ls(self) -> list[dict]:
        """Every machine smolvm knows of (``ls --json``); only name/state/pid/labels are relied on."""
        result = self.call("ls", ["--json"], timeout=60)
        listed = json.loads(result.stdout or b"[]")
        return [m for m in listed if isinstance(m, dict)]

    def exec_args(self, name: str, argv: Sequence[str], *, user: str | None, env: Mapping[str, str] | None,
                  workdir: str | None, interactive: bool, tty: bool = False) -> list[str]:
        """The arguments of ``machine exec`` for ``argv``; ``--`` always ends smolvm's options."""
        args = ["--name", name]
        command = list(argv)
        if user is not None:
            args += ["-u", user]
        if workdir:
            args += ["-w", workdir]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if interactive:
            args.append("-i")
        if tty:
            args.append("-t")
        return [*args, "--", *command]


def _feed(proc: subprocess.Popen, stdin: Stdin) -> None:
    assert proc.stdin is not None
    try:
        for chunk in _chunks(stdin):
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass  # smolvm stopped reading; its exit code and Error: line say why
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass


def _chunks(stdin: Stdin) -> Iterable[bytes]:
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        yield bytes(stdin)
    elif hasattr(stdin, "read"):
        while chunk := stdin.read(1024 * 1024):  # type: ignore[union-attr]
            yield chunk
    else:
        yield from stdin  # type: ignore[misc]
