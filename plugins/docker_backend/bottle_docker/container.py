"""DockerBottle: the Bottle handle over a running agent container."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Bottle, ExecResult, as_argv

from .seal import Seal
from .streams import exec_in, read_archive


class DockerBottle(Bottle):
    """exec, copy_in and copy_out through the engine API; attached runs through the docker CLI.

    Files may go in at once; every command (in the agent or the bundle) and :meth:`ready` wait for the seal
    first (:mod:`.seal`: the bundle's packet filter set, the agent's default route removed).
    """

    def __init__(self, plan: Plan, client, agent_id: str, bundle, seal: Seal | None = None):
        super().__init__(plan, bundle)
        self.client = client
        self.agent_id = agent_id
        self.bundle_id = bundle.container_id
        #: What must have ended before anything runs in the bottle (a cold launch's one-shots): files may go in.
        self.seal = seal

    def _sealed(self) -> None:
        if self.seal is not None:
            self.seal.wait()

    def _user(self, user: str | None) -> str:
        return user if user is not None else str(self.plan.guest.uid)

    def _env(self, user: str | None, env: Mapping[str, str] | None) -> dict[str, str]:
        """The exec's own variables: as root, the manifest's env undone first (``root_environment``)."""
        from bottle_core.agent import ROOT, root_environment

        return {**(root_environment(self.plan) if self._user(user) in ROOT else {}), **(env or {})}

    def exec(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, stdin: bytes | None = None) -> ExecResult:
        self._sealed()
        return exec_in(self.client, self.agent_id, as_argv(command), user=self._user(user), env=self._env(user, env),
                       workdir=workdir or self.plan.guest.workspace, stdin=stdin)

    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        self._sealed()
        docker_cli = shutil.which("docker")
        if docker_cli is None:
            raise BottleRuntimeError("the docker command-line client is needed to attach to a bottle",
                                     hint="install the docker CLI (Debian: docker.io)")
        cmd = [docker_cli, "exec", "-i", "-u", self._user(user), "-w", workdir or self.plan.guest.workspace]
        if tty:
            cmd.append("-t")
        for key, value in self._env(user, env).items():
            cmd += ["-e", f"{key}={value}"]
        cmd += [self.agent_id, *argv]
        return subprocess.call(cmd, stdin=None if sys.stdin and not sys.stdin.closed else subprocess.DEVNULL)

    def exec_bundle(self, command: Sequence[str] | str, *, user: str = "0") -> ExecResult:
        self._sealed()
        return super().exec_bundle(command, user=user)

    def ready(self) -> None:
        self._sealed()
        super().ready()

    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        if not self.client.api.put_archive(self.agent_id, dest, tar_stream):
            raise BottleRuntimeError(f"could not copy files into {dest} in bottle {self.plan.slug}")

    def copy_out(self, src: str) -> bytes:
        return read_archive(self.client, self.agent_id, src)
