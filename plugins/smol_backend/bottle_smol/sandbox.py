"""The Bottle handle of a smol bottle: every operation is a ``smolvm machine exec``."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Bottle, Bundle, ExecResult, as_argv

from .engine import Engine

ROOT = "root"
EXEC_TIMEOUT = 6 * 3600  # a bound, not a budget: agent runs can be long


class SmolBottle(Bottle):
    """A running agent microVM, driven through the smolvm CLI.

    Files move as tar streams through ``exec`` of ``tar`` (stdin in, stdout
    out). Buffered exec output is capped by smolvm at about 11 MiB per stream,
    which bounds ``copy_out``.
    """

    def __init__(self, plan: Plan, engine: Engine, machine: str, *, bundle: Bundle | None = None):
        super().__init__(plan, bundle)
        self.engine = engine
        self.machine = machine

    def _env(self, user: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
        """The exec's own variables: as root, the manifest's env undone first (``root_environment``)."""
        from bottle_core.agent import ROOT as ROOTS, root_environment

        return {**(root_environment(self.plan) if user in ROOTS else {}), **(env or {})}

    def exec(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, stdin: bytes | BinaryIO | None = None) -> ExecResult:
        args = self.engine.exec_args(self.machine, as_argv(command), user=user or self.plan.guest.user,
                                     env=self._env(user, env),
                                     workdir=workdir or self.plan.guest.workspace, interactive=stdin is not None)
        return self.engine.call("exec", args, stdin=stdin, timeout=EXEC_TIMEOUT)

    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        args = self.engine.exec_args(self.machine, argv, user=user or self.plan.guest.user, env=self._env(user, env),
                                     workdir=workdir or self.plan.guest.workspace, interactive=True, tty=tty)
        return self.engine.attach("exec", args)

    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        # As root, so the owners recorded in the tar stream are kept.
        result = self.exec(["tar", "-x", "-p", "-f", "-", "-C", dest], user=ROOT, workdir="/", stdin=tar_stream)
        if not result.ok:
            raise BottleRuntimeError(f"copy into {dest} in bottle {self.plan.slug} failed: {_last_line(result)}")

    def copy_out(self, src: str) -> bytes:
        path = posixpath.normpath(src)
        parent, base = posixpath.split(path) if path != "/" else ("/", ".")
        result = self.exec(["tar", "-c", "-f", "-", "-C", parent or "/", base], user=ROOT, workdir="/")
        if not result.ok:
            raise BottleRuntimeError(f"copy of {shlex.quote(src)} out of bottle {self.plan.slug} failed: "
                                     f"{_last_line(result)}")
        return result.stdout


def _last_line(result: ExecResult) -> str:
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit {result.returncode}"


