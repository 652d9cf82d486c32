"""The k8s backend from the agent's seat, on the real test cluster (``make cluster``).

What the backend-parametrised tests cannot see, because it exists only on a
cluster: the service-account token, the API server (its service IP and its
real address), the node's address, other pods -- each tried from inside the
agent (uid 1000), each with a control showing the probe can tell. And what a
bottle leaves on the cluster: nothing, once it ends, is stopped, or its
owner dies.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from .bottles import background_bottle, bottle_cli, bottle_of, tcp_probe, write_manifest

pytestmark = pytest.mark.integration

CONTROL_PORT = 8000


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"probe": {"bottle": "dev"}}})


@pytest.fixture
def k8s(k8s_cluster):
    """The backend's API handle on the test cluster."""
    from bottle_k8s import cluster, settings

    cluster.api_client.cache_clear()
    return cluster.core(), settings.namespace()


def objects_of(slug: str | None = None, *, agent: str | None = None) -> list[str]:
    """Every object on the cluster labelled with bottle ``slug``, or of ``agent``'s bottles (pods, policies,
    secrets, config maps)."""
    from bottle_k8s import labels
    from bottle_k8s.cluster import core, networking

    namespace = os.environ.get("BOTTLE_K8S_NAMESPACE") or "default"
    selector = labels.selector(slug=slug) + (f",{labels.AGENT}={agent}" if agent else "")
    api = core()
    found = [*(f"pod {p.metadata.name}" for p in api.list_namespaced_pod(namespace, label_selector=selector).items),
             *(f"secret {s.metadata.name}" for s in api.list_namespaced_secret(namespace, label_selector=selector).items),
             *(f"configmap {c.metadata.name}"
               for c in api.list_namespaced_config_map(namespace, label_selector=selector).items),
             *(f"networkpolicy {n.metadata.name}"
               for n in networking().list_namespaced_network_policy(namespace, label_selector=selector).items)]
    return found


@contextmanager
def plain_pod(k8s, name: str, command: list[str]):
    """An ordinary pod (no bottle's filter) from the bundle image, a server to probe or a control client; its IP."""
    from bottle_k8s import images, pods

    api, namespace = k8s
    image = bundle_image()
    images.ensure_on_cluster([image])
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bottle-test": "k8s"}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                                     "command": command}]}}
    api.create_namespaced_pod(namespace, body)
    try:
        yield pods.wait_for(name, namespace, "run", lambda pod: pod.status.phase == "Running" and pod.status.pod_ip,
                            120)
    finally:
        api.delete_namespaced_pod(name, namespace, grace_period_seconds=1)
        deadline = time.monotonic() + 60
        while pods.read(name, namespace) is not None and time.monotonic() < deadline:
            time.sleep(0.2)


def bundle_image() -> str:
    from bottle_docker import sidecar

    built = sidecar.build_images()
    return next(name for name in built if name.startswith("bottle-bundle:"))


def server_command(port: int = CONTROL_PORT) -> list[str]:
    return ["python3", "-m", "http.server", "--bind", "0.0.0.0", str(port)]


def pod_reaches(k8s, pod_name: str, host: str, port: int) -> bool:
    """From an ordinary pod: does a TCP connection to host:port succeed (the control)."""
    from bottle_k8s.streams import exec_in

    result = exec_in(pod_name, "main", ["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"],
                     namespace=k8s[1])
    return result.returncode == 0


def test_the_agent_has_no_service_account_token_and_no_service_variables(manifest, k8s):
    with bottle_of(manifest, "probe", backend="k8s") as bottle:
        assert bottle.exec(["id", "-u"]).text().strip() == "1000"
        token = bottle.exec(["sh", "-c", "ls /var/run/secrets/kubernetes.io/serviceaccount/token"])
        assert token.returncode != 0
        service_ip = k8s[0].read_namespaced_service("kubernetes", "default").spec.cluster_ip
        # Not in its environment, nor in that of the pod's first process (readable by the same user).
        for env in (bottle.exec(["env"]).text(), bottle.exec(["cat", "/proc/1/environ"]).text()):
            assert service_ip not in env
        assert bottle.exec(["printenv", "KUBERNETES_SERVICE_HOST"]).text().strip() == ""
        # The capabilities the agent's processes hold: none.
        status = bottle.exec(["grep", "^Cap", "/proc/self/status"]).text()
        assert all(line.split()[1] == "0000000000000000" for line in status.splitlines()), status
        assert "NoNewPrivs:\t1" in bottle.exec(["cat", "/proc/self/status"]).text()


def test_other_pods_are_unreachable_from_the_agent_but_reachable_from_a_plain_pod(manifest, k8s):
    with plain_pod(k8s, "bottle-test-server", server_command()) as server, \
            plain_pod(k8s, "bottle-test-client", ["sleep", "600"]):
        target = server
        assert pod_reaches(k8s, "bottle-test-client", target, CONTROL_PORT), "control: pods reach each other here"
        with bottle_of(manifest, "probe", backend="k8s") as bottle:
            assert not tcp_probe(bottle, target, CONTROL_PORT)
            # Nor through the proxy: the bundle's egress refuses the cluster's own ranges.
            through = bottle.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                                   f"http://{target}:{CONTROL_PORT}/"])
            assert through.stdout != b"200"
            # Nor as the bundle's own egress stage, the one user there that may connect out.
            egress = bottle.exec_bundle(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{target}/{CONTROL_PORT}"],
                                        user="egress")
            assert egress.returncode != 0
            # And the only peer it has answers.
            assert tcp_probe(bottle, bottle.plan.network.bundle_ip, bottle.plan.proxy.port)


def test_another_pod_cannot_use_a_bottles_bundle(manifest, k8s):
    with plain_pod(k8s, "bottle-test-client", ["sleep", "600"]):
        with bottle_of(manifest, "probe", backend="k8s") as bottle:
            plan = bottle.plan
            assert tcp_probe(bottle, plan.network.bundle_ip, plan.proxy.port), "control: the agent reaches it"
            assert not pod_reaches(k8s, "bottle-test-client", plan.network.bundle_ip, plan.proxy.port)
            assert not pod_reaches(k8s, "bottle-test-client", plan.network.bundle_ip, plan.git_gate.port)


def test_the_node_and_the_api_server_are_unreachable_from_the_agent(manifest, k8s):
    from bottle_k8s.cluster import api_host

    api, namespace = k8s
    nodes = [a.address for n in api.list_node().items for a in n.status.addresses if a.type == "InternalIP"]
    service = api.read_namespaced_service("kubernetes", "default")
    endpoints = [(a.ip, p.port) for s in api.read_namespaced_endpoints("kubernetes", "default").subsets or []
                 for a in s.addresses or [] for p in s.ports or []]
    # A listener on every address of this machine, the node's too: a plain pod reaches it (the control).
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with plain_pod(k8s, "bottle-test-client", ["sleep", "600"]):
            assert nodes and any(pod_reaches(k8s, "bottle-test-client", node, port) for node in nodes), \
                "control: a plain pod reaches the node"
            with bottle_of(manifest, "probe", backend="k8s") as bottle:
                for node in nodes:
                    assert not tcp_probe(bottle, node, port), f"reached node {node}"
                    assert not tcp_probe(bottle, node, 10250), f"reached the kubelet on {node}"
                for address, api_port in endpoints:
                    assert not tcp_probe(bottle, address, api_port), f"reached the API server at {address}"
                assert not tcp_probe(bottle, service.spec.cluster_ip, 443), "reached the API server's service IP"
                # The kubeconfig's own address of the API server (loopback here: the agent's own loopback).
                host = api_host().split("://", 1)[-1]
                assert not tcp_probe(bottle, host.rsplit(":", 1)[0], int(host.rsplit(":", 1)[1]))
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_no_secret_reaches_the_cluster_api_or_the_agent(tmp_path, k8s, monkeypatch):
    monkeypatch.setenv("BOTTLE_TEST_K8S_SECRET", "s3cr3t-value-k8s")
    manifest = write_manifest(tmp_path, {
        "bottles": {"dev": {"secrets": {"TOKEN": {"from_env": "BOTTLE_TEST_K8S_SECRET", "hosts": ["example.com"]}}}},
        "agents": {"probe": {"bottle": "dev"}}})
    api, namespace = k8s
    with bottle_of(manifest, "probe", backend="k8s") as bottle:
        pods = api.list_namespaced_pod(namespace, label_selector=f"bottle.slug={bottle.plan.slug}").items
        assert len(pods) == 2
        assert "s3cr3t-value-k8s" not in json.dumps(api.api_client.sanitize_for_serialization(pods))
        assert "s3cr3t-value-k8s" not in bottle.exec(["env"]).text()
        assert bottle.exec(["printenv", "TOKEN"]).text().strip() != "s3cr3t-value-k8s"
        # The bundle holds it (its proxy swaps it in).
        assert b"s3cr3t-value-k8s" in bottle.exec_bundle(["cat", "/etc/bottle/secrets.json"]).stdout


def test_nothing_is_left_after_the_bottle_ends(manifest, k8s):
    with bottle_of(manifest, "probe", backend="k8s") as bottle:
        slug = bottle.plan.slug
        assert len([o for o in objects_of(slug) if o.startswith("pod ")]) == 2
        assert len([o for o in objects_of(slug) if o.startswith("networkpolicy ")]) == 2
    assert objects_of(slug) == []


@contextmanager
def sleeping_bottle(manifest: Path, monkeypatch):
    """`bottle exec probe -- sleep 300` on k8s in the background: yields (process, slug) once `bottle ls` shows it."""
    monkeypatch.setenv("BOTTLE_BACKEND", "k8s")
    monkeypatch.chdir(manifest.parent)  # not a git repository: a local origin is refused on k8s
    with background_bottle(manifest, "probe", "sleep", "300", timeout=180) as (proc, slug):
        yield proc, slug


def test_stop_and_the_owners_death_remove_everything(manifest, k8s, monkeypatch):
    with sleeping_bottle(manifest, monkeypatch) as (proc, slug):
        assert objects_of(slug)
        os.kill(proc.pid, signal.SIGKILL)  # no teardown: the reaper must do it
        proc.wait(30)
        deadline = time.monotonic() + 120
        while objects_of(slug) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert objects_of(slug) == []
    with sleeping_bottle(manifest, monkeypatch) as (proc, slug):
        stopped = bottle_cli("stop", slug)
        assert stopped.returncode == 0, stopped.stderr
        assert objects_of(slug) == []


def test_gc_removes_a_bottle_whose_owner_and_reaper_are_gone(manifest, k8s, monkeypatch):
    with sleeping_bottle(manifest, monkeypatch) as (proc, slug):
        reapers = subprocess.run(["pgrep", "-f", f"bottle_core.reaper k8s {slug}"], capture_output=True, text=True)
        assert reapers.stdout.split(), "control: a reaper watches the bottle"
        for pid in reapers.stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert objects_of(slug), "nobody is left to remove it but gc"
        collected = bottle_cli("gc")
        assert collected.returncode == 0, collected.stderr
        assert objects_of(slug) == []
