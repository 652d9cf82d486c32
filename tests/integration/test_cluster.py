"""The test cluster (`make cluster`, scripts/cluster.sh) runs real pods: an image built by the local
Docker engine, imported into the cluster's containerd, runs as a pod whose exec and logs work
through the official Kubernetes client."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "scripts" / "cluster.sh"
RUNNING_TIMEOUT = 120
GONE_TIMEOUT = 180


@pytest.fixture(scope="module")
def core():
    """A CoreV1Api client for the test cluster named by KUBECONFIG; fails naming `make cluster` without one."""
    path = os.environ.get("KUBECONFIG")
    if not path or not Path(path).is_file():
        pytest.fail("KUBECONFIG does not name a kubeconfig: start the test cluster with `make cluster` and "
                    "export the variables in /var/lib/bottle-cluster/env (`make test` does both)", pytrace=False)
    from kubernetes import client, config

    config.load_kube_config(config_file=path)
    api = client.ApiClient()
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def namespace(core):
    """A namespace of the test's own, deleted afterwards (and waited for, so nothing is left)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"bottle-test-{secrets.token_hex(4)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
    deadline = time.monotonic() + GONE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            left = core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1)
    pytest.fail(f"namespace {name} still there {GONE_TIMEOUT}s after its deletion: {left.status}")


@pytest.fixture
def imported_image(server_image) -> str:
    """The locally built test-server image, imported into the cluster with `scripts/cluster.sh import`."""
    result = subprocess.run([str(CLUSTER), "import", server_image], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"scripts/cluster.sh import failed:\n{result.stderr}"
    return server_image


def wait_running(core, name: str, namespace: str) -> None:
    """Wait (bounded) until the pod runs; fail with its phase and container states otherwise."""
    deadline = time.monotonic() + RUNNING_TIMEOUT
    pod = None
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running":
            return
        assert pod.status.phase in ("Pending", None), f"pod {name} ended: {pod.status}"
        time.sleep(1)
    pytest.fail(f"pod {name} not Running within {RUNNING_TIMEOUT}s: {pod.status if pod else 'never read'}")


def test_a_pod_from_a_local_image_runs_execs_and_logs(core, namespace, imported_image):
    from kubernetes import client
    from kubernetes.stream import stream

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="probe"),
        spec=client.V1PodSpec(
            restart_policy="Never",
            # `sleep` as pid 1 ignores SIGTERM: do not wait the default 30 s for it at deletion.
            termination_grace_period_seconds=1,
            automount_service_account_token=False,
            containers=[client.V1Container(
                name="main",
                image=imported_image,
                image_pull_policy="Never",
                command=["sh", "-c", "echo hello from the pod; exec sleep 600"],
                security_context=client.V1SecurityContext(run_as_user=1000, run_as_group=1000,
                                                          allow_privilege_escalation=False),
            )],
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    wait_running(core, "probe", namespace)

    uid = stream(core.connect_get_namespaced_pod_exec, "probe", namespace, command=["id", "-u"],
                 stdout=True, stderr=True, stdin=False, tty=False)
    assert uid.strip() == "1000"

    deadline = time.monotonic() + RUNNING_TIMEOUT
    logs = ""
    while "hello from the pod" not in logs and time.monotonic() < deadline:
        logs = core.read_namespaced_pod_log("probe", namespace)
        time.sleep(0.5)
    assert "hello from the pod" in logs
