"""The k8s backend's parts that need no cluster: exec wrapping, files, users, images, labels, refusals."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest

from bottle_core.errors import BottleRuntimeError, UsageError
from bottle_k8s import bundle, images, labels, manifests, prepare, sandbox, seccomp, settings, streams
from bottle_k8s.sandbox import K8sBottle, root_owned


def test_exec_with_input_reads_exactly_the_bytes_sent_then_ends(tmp_path):
    data = b"line one\nline two\n"
    argv = streams.wrapped(["wc", "-c"], stdin_size=len(data))
    # The stream stays open after the data (1.20 cannot close stdin): the command must stop at the count anyway.
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(argv, stdin=read_fd, stdout=subprocess.PIPE)
    os.close(read_fd)
    os.write(write_fd, data)
    out, _ = process.communicate(timeout=10)
    os.close(write_fd)
    assert out.strip() == str(len(data)).encode()


def test_exec_runs_in_the_folder_with_the_variables_given(tmp_path):
    argv = streams.wrapped(["sh", "-c", 'echo "$PWD $GREETING"'], env={"GREETING": "hi there"}, workdir=str(tmp_path))
    assert subprocess.run(argv, capture_output=True, text=True).stdout.strip() == f"{tmp_path} hi there"


def test_exit_codes_come_from_the_status_channel():
    assert streams.exit_code(b'{"metadata":{},"status":"Success"}', ["true"]) == 0
    failed = (b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code",'
              b'"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')
    assert streams.exit_code(failed, ["false"]) == 3
    with pytest.raises(BottleRuntimeError, match="executable file not found"):
        streams.exit_code(b'{"status":"Failure","message":"exec: \\"nope\\": executable file not found"}', ["nope"])
    with pytest.raises(BottleRuntimeError, match="without a status"):
        streams.exit_code(b"", ["x"])


def test_bundle_files_are_read_only_under_the_files_folder_with_the_peer_and_no_marker():
    data = bundle.files_tar({"/etc/bottle/bundle.json": b"{}", "/etc/bottle/secrets.json": b"[]"}, "10.244.0.9")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        # The marker ends the files container: it comes apart, after these are in (bundle.send_files).
        assert manifests.FILES_DONE.lstrip("/") not in [m.name for m in members]
        assert all(m.mode == 0o444 for m in members)
        assert tar.extractfile(manifests.PEER_FILE.lstrip("/")).read() == b"10.244.0.9"
    with pytest.raises(ValueError, match="outside"):
        bundle.files_tar({"/etc/passwd": b"x"}, "10.0.0.1")


def test_bundle_execs_drop_to_the_user_asked_for():
    assert bundle.as_user(["id"], "0") == ["id"]
    assert bundle.as_user(["id"], "bundle")[:4] == ["setpriv", "--reuid=bundle", "--regid=bundle", "--init-groups"]


def test_agent_commands_go_to_the_agent_container_and_root_ones_to_the_root_container(plan_factory, tmp_path):
    bottle = K8sBottle(plan_factory(cwd=tmp_path), "pod", "ns", bundle=None)
    assert bottle.container_for(None) == bottle.container_for("1000") == bottle.container_for("agent") == "agent"
    assert bottle.container_for("0") == bottle.container_for("root") == "root"
    with pytest.raises(BottleRuntimeError, match="agent .1000. or root"):
        bottle.container_for("33")
    assert root_owned("/usr/local/share/ca-certificates") and root_owned("/etc/claude-code/x.json")
    assert not root_owned("/home/agent/.claude") and not root_owned("/etc/ssl/certsx")


def test_images_need_a_way_to_the_cluster(monkeypatch):
    monkeypatch.delenv(settings.CONTAINERD_ADDRESS.variable, raising=False)
    monkeypatch.delenv(settings.REGISTRY.variable, raising=False)
    with pytest.raises(BottleRuntimeError) as caught:
        images.ensure_on_cluster(["bottle-agent:x"])
    assert settings.CONTAINERD_ADDRESS.variable in caught.value.render()
    assert settings.REGISTRY.variable in caught.value.render()


def test_image_names_on_the_cluster():
    assert images.containerd_name("bottle-agent:abc") == "docker.io/library/bottle-agent:abc"
    assert images.containerd_name("me/bottle-agent:abc") == "docker.io/me/bottle-agent:abc"
    assert images.containerd_name("reg.example:5000/b:abc") == "reg.example:5000/b:abc"
    assert images.cluster_name("bottle-agent:abc", "reg.example:5000/team/") == "reg.example:5000/team/bottle-agent:abc"
    assert images.cluster_name("bottle-agent:abc", "") == "bottle-agent:abc"
    assert images.address_path("unix:///run/c.sock") == "/run/c.sock"


def test_a_git_remote_on_this_machine_is_lent_and_the_gate_runs_as_its_own_user(plan_factory, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    made = plan_factory(cwd=tmp_path / "repo")
    assert made.git_gate.remotes["origin"].kind == "path" and made.git_gate.run_as is not None
    prepare.lend_path_remotes(made)
    assert made.git_gate.run_as is None  # the folder's owner means nothing in a pod: the gate's own user
    pod = manifests.bundle_pod(made, "bottle-bundle:x")
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "upstreams", "mountPath": "/srv/upstream"} in mounts
    assert {"name": "upstreams", "emptyDir": {}} in pod["spec"]["volumes"]


def test_a_shallow_clone_cannot_be_lent_and_says_what_to_do(plan_factory, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path / "full")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "full"), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                    "--allow-empty", "-m", "one"], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "full"), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                    "--allow-empty", "-m", "two"], check=True)
    subprocess.run(["git", "clone", "-q", "--depth=1", f"file://{tmp_path / 'full'}", str(tmp_path / "shallow")],
                   check=True)
    with pytest.raises(UsageError, match="git remote origin: .* is a shallow clone") as caught:
        prepare.lend_path_remotes(plan_factory(cwd=tmp_path / "shallow"))
    assert "--unshallow" in caught.value.render()


def test_a_bottle_outside_a_repository_lends_nothing(plan_factory, tmp_path):
    made = plan_factory(cwd=tmp_path)
    prepare.lend_path_remotes(made)
    assert not made.git_gate.remotes
    assert all(v["name"] != "upstreams" for v in manifests.bundle_pod(made, "bottle-bundle:x")["spec"]["volumes"])


def test_owner_alive_judges_only_this_hosts_processes():
    import socket

    here = {labels.OWNER_HOST: socket.gethostname()}
    assert labels.owner_alive({**here, labels.OWNER_PID: str(os.getpid())})
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not labels.owner_alive({**here, labels.OWNER_PID: str(dead.pid)})
    assert labels.owner_alive({labels.OWNER_HOST: "another-host", labels.OWNER_PID: str(dead.pid)})
    assert labels.selector("s-1", "agent") == "bottle.managed=true,bottle.slug=s-1,bottle.role=agent"


def test_the_backend_declares_its_settings():
    from bottle_k8s import backend

    assert {s.variable for s in backend.backend_settings()} >= {
        "BOTTLE_K8S_NAMESPACE", "BOTTLE_K8S_KUBECONFIG", "BOTTLE_K8S_CONTEXT", "BOTTLE_K8S_CONTAINERD_ADDRESS",
        "BOTTLE_K8S_REGISTRY"}


def test_no_cluster_is_one_line_naming_kubeconfig(monkeypatch, tmp_path):
    from bottle_k8s import cluster

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv(settings.KUBECONFIG.variable, raising=False)
    cluster.api_client.cache_clear()
    try:
        reason = cluster.availability()
    finally:
        cluster.api_client.cache_clear()
    assert reason is not None and "missing" in reason and "KUBECONFIG" in reason


def test_bundle_hosts_become_host_aliases_and_bad_ones_are_named():
    assert settings.bundle_hosts("a.test=10.1.0.5, b.test=10.1.0.5,c.test=10.1.0.6") == [
        {"ip": "10.1.0.5", "hostnames": ["a.test", "b.test"]}, {"ip": "10.1.0.6", "hostnames": ["c.test"]}]
    assert settings.bundle_hosts("") == []
    with pytest.raises(UsageError, match="BOTTLE_K8S_BUNDLE_HOSTS: 'a.test' is not name=ip"):
        settings.bundle_hosts("a.test")


def test_a_pod_counts_as_stopped_only_when_no_container_runs():
    from types import SimpleNamespace as NS

    from bottle_k8s.inventory import stopped

    def pod(*running):
        states = [NS(state=NS(running=object() if r else None)) for r in running]
        return NS(status=NS(init_container_statuses=[], container_statuses=states))

    assert stopped(pod(False, False)) and stopped(pod())
    assert not stopped(pod(False, True))


def test_each_exec_gets_an_api_client_of_its_own(monkeypatch):
    """``stream`` swaps its client's request method while it runs: a shared client would break other threads."""
    from bottle_k8s import cluster

    made = []

    class Fake:
        def __init__(self, api_client):
            made.append(api_client)

        def connect_get_namespaced_pod_exec(self, *args, **kwargs):
            raise RuntimeError("stop here")

    monkeypatch.setattr("kubernetes.client.CoreV1Api", Fake)
    monkeypatch.setattr("kubernetes.stream.stream", lambda method, *a, **k: method(*a, **k))
    monkeypatch.setattr(cluster, "api_client", lambda: __import__("kubernetes").client.ApiClient())
    for _ in range(2):
        with pytest.raises(RuntimeError, match="stop here"):
            streams.exec_in("pod", "agent", ["true"], namespace="ns")
    assert len(made) == 2 and made[0] is not made[1]


#: io_uring_setup(8, params) on x86_64 and arm64 alike (425): its result and errno.
IO_URING = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); params = ctypes.create_string_buffer(120); "
            "print(libc.syscall(425, 8, params), ctypes.get_errno())")
needs_libseccomp = pytest.mark.skipif(not __import__("ctypes.util").util.find_library("seccomp"),
                                      reason="no libseccomp on this host")


@needs_libseccomp
def test_agent_commands_run_behind_a_filter_that_answers_io_uring_with_enosys():
    argv = seccomp.guarded([sys.executable, "-c", IO_URING])
    argv[0] = sys.executable  # this host's python stands for the image's python3
    assert subprocess.run(argv, capture_output=True, text=True).stdout.split() == ["-1", "38"]
    # Ordinary commands run as ever, and a missing one says so as a shell would.
    assert subprocess.run([sys.executable, *seccomp.guarded(["sh", "-c", "exit 3"])[1:]]).returncode == 3
    missing = subprocess.run([sys.executable, *seccomp.guarded(["no-such-command"])[1:]], capture_output=True)
    assert missing.returncode == 127 and b"no-such-command" in missing.stderr


@needs_libseccomp
def test_loader_variables_reach_the_command_only_behind_the_filter():
    env = seccomp.set_aside({"LD_LIBRARY_PATH": "/opt/lib", "GREETING": "hi"})
    assert env == {"BOTTLE_ASIDE_LD_LIBRARY_PATH": "/opt/lib", "GREETING": "hi"}
    shown = subprocess.run([sys.executable, *seccomp.guarded(["sh", "-c", 'echo "$LD_LIBRARY_PATH $GREETING"'])[1:]],
                           env={**os.environ, **env}, capture_output=True, text=True)
    assert shown.stdout.strip() == "/opt/lib hi"


def test_only_the_agents_commands_go_through_the_filter(plan_factory, tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(sandbox, "exec_in", lambda pod, container, argv, **kw: sent.append((container, argv, kw)))
    bottle = K8sBottle(plan_factory(cwd=tmp_path), "pod", "ns", bundle=None)
    bottle.exec(["id"], env={"LD_PRELOAD": "/workspace/x.so"})
    bottle.exec(["id"], user="root")
    (agent, guarded, options), (root, plain, _) = sent
    assert (agent, guarded[:2], guarded[-1]) == ("agent", ["python3", "-I"], "id")
    assert options["env"] == {"BOTTLE_ASIDE_LD_PRELOAD": "/workspace/x.so"}
    assert (root, plain) == ("root", ["id"])
    # The manifest's env reaches the pod's environment with its loader variables set aside too.
    monkeypatch.setattr(manifests.agent_sandbox, "environment", lambda plan: {"LD_PRELOAD": "/workspace/x.so"})
    containers = manifests.agent_pod(bottle.plan, "agent-image", "filter-image")["spec"]["containers"]
    names = {entry["name"] for container in containers for entry in container.get("env", [])}
    assert "BOTTLE_ASIDE_LD_PRELOAD" in names and "LD_PRELOAD" not in names


def test_an_exec_whose_output_grows_past_its_limit_is_cut_off(monkeypatch):
    """What a pod sends is held in memory: a caller that does not trust the pod bounds it."""
    from bottle_k8s import cluster

    class Endless:
        closed = False

        def is_open(self):
            return True

        def update(self, timeout):
            pass

        def peek_stdout(self):
            return True

        def read_stdout(self):
            return b"x" * 2**20

        def peek_stderr(self):
            return False

        def close(self):
            Endless.closed = True

    monkeypatch.setattr("kubernetes.stream.stream", lambda *a, **k: Endless())
    monkeypatch.setattr(cluster, "api_client", lambda: __import__("kubernetes").client.ApiClient())
    with pytest.raises(BottleRuntimeError, match="sent more than 3145728 bytes: cut off"):
        streams.exec_in("pod", "bundle", ["cat"], namespace="ns", stdout_limit=3 * 2**20)
    assert Endless.closed


def test_no_configuration_at_all_is_said_without_the_client(monkeypatch, tmp_path):
    import sys

    from bottle_k8s import cluster

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv(settings.KUBECONFIG.variable, raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # importing it now would raise
    reason = cluster.availability()
    assert reason is not None and "no Kubernetes cluster configured" in reason and "KUBECONFIG" in reason
