"""The bundle as a pod: its files sent in through an exec stream, its readiness, CA and output through the API."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterable, Sequence

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.sandbox import Bundle, ExecResult

from . import manifests, pods
from .streams import exec_in, untar_command

CONTAINER = "bundle"
#: Users an exec can be, as the bundle container runs them (it runs as root and may only drop to another user).
ROOT = {"0", "root"}


def as_user(argv: Sequence[str], user: str) -> list[str]:
    """``argv`` run as ``user`` from the bundle's root: an exec on Kubernetes has no user of its own."""
    if user in ROOT:
        return list(argv)
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


def files_tar(files: dict[str, bytes], peer: str) -> bytes:
    """The bundle's files (read-only, mode 0444) and the agent's address, as a tar stream under :data:`FILES_DIR`."""
    buffer = io.BytesIO()
    below = manifests.FILES_DIR.lstrip("/")
    entries = {**files, manifests.PEER_FILE: peer.encode()}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in entries.items():
            name = path.lstrip("/")
            if not name.startswith(below + "/"):
                raise ValueError(f"bundle file {path} is outside {manifests.FILES_DIR}")
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o444
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def send_files(pod: str, namespace: str, files: dict[str, bytes], peer: str) -> None:
    """Put the bundle's files in through its ``files`` init container, then let it end so the rest starts.

    The marker that ends the container comes in an exec of its own, after
    the files are known to be in: the container ends as soon as it sees it,
    killing whatever still runs in it, so nothing that must finish may share
    that exec. Its own outcome is not waited for (the container may end
    before the exec reports); a container that never saw it says so when the
    bundle is awaited.
    """
    pods.wait_for(pod, namespace, "start its files container", pods.running("files", init=True), 120)
    result = exec_in(pod, "files", untar_command("/"), namespace=namespace, stdin=files_tar(files, peer))
    if not result.ok:
        raise BottleRuntimeError(f"could not give bundle pod {pod} its files: "
                                 f"{result.stderr.decode('utf-8', 'replace').strip() or result.returncode}")
    try:
        exec_in(pod, "files", ["touch", manifests.FILES_DONE], namespace=namespace)
    except BottleRuntimeError:
        pass  # the container ended first, as it should once the marker is there


class PodBundle(Bundle):
    """A bundle running as a pod."""

    def __init__(self, pod: str, namespace: str, slug: str):
        super().__init__(slug)
        self.pod = pod
        self.namespace = namespace

    def _started(self, timeout: float = contract.READY_TIMEOUT) -> None:
        """Until the bundle container has started or ended (the log API has nothing before); its pod's trouble
        otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = pods.read(self.pod, self.namespace)
            state = pods.state_of(pod, CONTAINER) if pod is not None else None
            if state is not None and (state.running is not None or state.terminated is not None):
                return
            trouble = pods.problem(pod)
            if trouble is not None:
                raise BottleRuntimeError(f"the bundle of bottle {self.slug} did not start: {trouble}")
            time.sleep(pods.POLL)
        raise BottleRuntimeError(f"the bundle of bottle {self.slug} did not start within {timeout:.0f} s")

    def _logs(self) -> bytes:
        from .cluster import core

        response = core().read_namespaced_pod_log(self.pod, self.namespace, container=CONTAINER,
                                                   _preload_content=False)
        return response.data

    def wait_ready(self) -> None:
        deadline = time.monotonic() + contract.READY_TIMEOUT
        self._started()
        while time.monotonic() < deadline:
            if contract.READY_LINE in self._logs():
                return
            pod = pods.read(self.pod, self.namespace)
            state = pods.state_of(pod, CONTAINER) if pod is not None else None
            if state is None or state.terminated is not None:
                break
            time.sleep(0.1)
        tail = self._logs().decode("utf-8", "replace").strip().splitlines()[-3:]
        raise BottleRuntimeError(f"the bundle of bottle {self.slug} did not become ready: "
                                 f"{' | '.join(tail) or 'no output'}")

    def ca_certificate(self) -> bytes:
        deadline = time.monotonic() + contract.READY_TIMEOUT
        self._started()
        while time.monotonic() < deadline:
            result = self.exec(["cat", contract.CA_CERT], user="0")
            if result.ok and b"BEGIN CERTIFICATE" in result.stdout:
                return result.stdout
            time.sleep(0.1)
        raise BottleRuntimeError(f"the bundle of bottle {self.slug} did not make its CA")

    def exec(self, argv: Sequence[str], *, user: str = "bundle") -> ExecResult:
        return exec_in(self.pod, CONTAINER, as_user(argv, str(user)), namespace=self.namespace)

    def output(self) -> Iterable[bytes]:
        from .cluster import core

        self._started()
        response = core().read_namespaced_pod_log(self.pod, self.namespace, container=CONTAINER, follow=True,
                                                   _preload_content=False)
        yield from response.stream(64 * 1024)

    def stop(self) -> None:
        from kubernetes.client.rest import ApiException

        from .cluster import core

        try:
            core().delete_namespaced_pod(self.pod, self.namespace, grace_period_seconds=1)
        except ApiException:
            pass  # already gone


