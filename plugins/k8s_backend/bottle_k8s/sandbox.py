"""K8sBottle: the Bottle handle over a running agent pod."""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Bottle, ExecResult, as_argv

from . import cluster, manifests, settings
from .seccomp import guarded, set_aside
from .streams import exec_in, untar_command

ROOT = {"0", "root"}


def kubectl() -> str:
    """The kubectl attached runs go through (``BOTTLE_K8S_KUBECTL``, else on PATH)."""
    found = settings.KUBECTL.value() or shutil.which("kubectl")
    if not found:
        raise BottleRuntimeError("kubectl is needed to attach to a bottle on Kubernetes",
                                 hint=f"install kubectl, or set {settings.KUBECTL.variable} to it")
    return found


class K8sBottle(Bottle):
    """exec, copy_in and copy_out through the exec API; attached runs through ``kubectl exec``.

    An exec on Kubernetes runs as its container's user: the agent's commands
    go to the ``agent`` container (uid 1000); the few core runs as root (the
    system trust store, the managed settings) go to the pod's ``root``
    container, which shares those folders alone (see :mod:`.manifests`).
    So provisioning goes call by call, not as one archive unpacked at ``/``.
    Every command run as the agent (exec, run) starts behind :mod:`.seccomp`'s filter (no io_uring).
    """

    provision_in_one_round = False

    def __init__(self, plan: Plan, pod: str, namespace: str, bundle):
        super().__init__(plan, bundle)
        self.pod = pod
        self.namespace = namespace

    def container_for(self, user: str | int | None) -> str:
        """The container an exec as ``user`` runs in."""
        if user is None or str(user) in (str(self.plan.guest.uid), self.plan.guest.user):
            return "agent"
        if str(user) in ROOT:
            return "root"
        raise BottleRuntimeError(f"bottle {self.plan.slug}: on Kubernetes a command runs as the agent "
                                 f"({self.plan.guest.uid}) or root, not {user}")

    def exec(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, stdin: bytes | None = None) -> ExecResult:
        container = self.container_for(user)
        argv, env = as_argv(command), env or {}
        if container == "agent":
            argv, env = guarded(argv), set_aside(env)
        return exec_in(self.pod, container, argv, namespace=self.namespace, stdin=stdin, env=env,
                       workdir=workdir or (self.plan.guest.workspace if container == "agent" else "/"))

    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        container = self.container_for(user)
        # The variables are set inside the filter here: none need setting aside.
        inner = ["env", "-C", workdir or (self.plan.guest.workspace if container == "agent" else "/"),
                 *(f"{key}={value}" for key, value in (env or {}).items()), *argv]
        cmd = [kubectl(), *kubectl_flags(), "exec", "-i", *(["-t"] if tty else []), "-n", self.namespace,
               "-c", container, self.pod, "--", *(guarded(inner) if container == "agent" else inner)]
        return subprocess.call(cmd, stdin=None if sys.stdin and not sys.stdin.closed else subprocess.DEVNULL)

    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        data = tar_stream if isinstance(tar_stream, bytes) else tar_stream.read()
        container = "root" if root_owned(dest) else "agent"
        result = exec_in(self.pod, container, untar_command(dest), namespace=self.namespace, stdin=data)
        if not result.ok:
            raise BottleRuntimeError(f"could not copy files into {dest} in bottle {self.plan.slug}: "
                                     f"{result.stderr.decode('utf-8', 'replace').strip()}")

    def copy_out(self, src: str) -> bytes:
        parent, name = posixpath.split(src.rstrip("/") or "/")
        result = exec_in(self.pod, "agent", ["tar", "-c", "-C", parent or "/", name or "."],
                         namespace=self.namespace)
        if not result.ok:
            raise BottleRuntimeError(f"no such path in the bottle: {src}")
        return result.stdout


def root_owned(dest: str) -> bool:
    """Whether ``dest`` lies in a folder only the ``root`` container may write."""
    return any(dest == path or dest.startswith(path + "/") for path in manifests.ROOT_PATHS.values())


def kubectl_flags() -> list[str]:
    """kubectl's flags for the cluster this backend uses."""
    flags = []
    path = cluster.kubeconfig_path()
    if path:
        flags += ["--kubeconfig", path]
    if settings.CONTEXT.value():
        flags += ["--context", settings.CONTEXT.value()]
    return flags


