"""Fixtures that stand in for "the internet" in integration tests.

A test network (``internet``, internal so nothing leaves the machine) holds a
scripted model API server answering as ``api.anthropic.com`` and a web origin
answering as ``allowed.test``, ``denied.test`` and a few more names, all with certificates from
a throwaway CA (``test_ca``). ``outbound_env`` gives the environment that puts
a bottle's bundle on that network and makes its proxy trust that CA;
``internet_egress`` is the manifest's egress table that opts the test
network's private subnet in (``egress.allow_private``): the bundle refuses
private addresses otherwise, and the test "internet" is one.

Every engine resource made here carries the label ``bottle.test=1`` and the
pid of the pytest process, is removed when the session ends (also after a
failure), and is swept by a later session if this one was killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.servers import internet as internet_module
from tests.servers.image import ImageBuildFailed, ensure_server_image
from tests.servers.internet import CertAuthority, ServerNotReady
from tests.servers.internet import remove_quietly as _remove_quietly

TEST_LABEL = "bottle.test"
PID_LABEL = "bottle.test.pid"
MODEL_HOST = "api.anthropic.com"
#: Names the web origin answers as. The proxy tests allow some of them, each on other ports and protocols;
#: the long hex label (the words "my password") stands for data hidden in a name under a wildcard entry.
ORIGIN_NAMES = ("allowed.test", "denied.test", "plain.test", "odd.test", "ssh.test", "www.wild.test",
                "6d792070617373776f7264.wild.test")
READY_TIMEOUT = internet_module.READY_TIMEOUT


def resource_labels() -> dict[str, str]:
    """Labels of every container and network the test fixtures create."""
    return {TEST_LABEL: "1", PID_LABEL: str(os.getpid())}


def _pid_alive(value: str | None) -> bool:
    try:
        pid = int(value or "")
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    try:
        # A killed session not yet reaped by its parent still answers kill(0): it is a zombie.
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def sweep_stale(client) -> None:
    """Remove test containers and networks left by pytest sessions that no longer run."""
    import docker.errors

    stale = [c for c in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"})
             if PID_LABEL in c.labels and not _pid_alive(c.labels[PID_LABEL])]
    stale += [n for n in client.networks.list(filters={"label": f"{TEST_LABEL}=1"})
              if PID_LABEL in (n.attrs.get("Labels") or {}) and not _pid_alive(n.attrs["Labels"][PID_LABEL])]
    for resource in stale:  # containers first, so their networks are free to go
        try:
            _remove_quietly(resource)
        except docker.errors.APIError:
            pass  # something else still holds it; the next sweep tries again



@pytest.fixture(scope="session", autouse=True)
def approvals_of_their_own(tmp_path_factory):
    """The manifests the tests write are approved (``bottles.write_manifest``) in a config folder of the
    session's own, never in the user's: running the tests adds nothing to their ``bottle trust`` approvals."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    yield
    patch.undo()

@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client for the local engine; fails the test clearly when there is none."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure here means the same thing to the user
        pytest.fail(f"integration tests need a running Docker engine: {exc}", pytrace=False)
    sweep_stale(client)
    yield client
    client.close()


# --- the test-server image ---------------------------------------------------


@pytest.fixture(scope="session")
def server_image(docker_client) -> str:
    """The test-server image's tag, built once (kept between sessions as a cache; older builds removed)."""
    try:
        return ensure_server_image(docker_client)[0]
    except ImageBuildFailed as exc:
        pytest.fail(str(exc), pytrace=False)


# --- the CA ------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> CertAuthority:
    """The session's test CA; its PEM is at ``test_ca.pem_path``."""
    directory = tmp_path_factory.mktemp("test-ca")
    directory.chmod(0o755)  # mounted into containers whose clients may not run as root
    return CertAuthority(directory)


# --- the network and containers on it ---------------------------------------


@dataclasses.dataclass
class RunResult:
    """What a throwaway container printed and how it exited."""

    exit_code: int
    stdout: str
    stderr: str


def wait_until_listening(container, marker: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll a server container's output for its ready line; fail with its output if it dies or stalls."""
    try:
        internet_module.wait_until_listening(container, marker, timeout)
    except ServerNotReady as exc:
        pytest.fail(str(exc), pytrace=False)


class Internet(internet_module.Internet):
    """The test "internet" (:mod:`tests.servers.internet`), with a throwaway container run to its end."""

    def run(self, command: list[str], *, environment=None, binds=None, timeout: float = 120) -> RunResult:
        """Run ``command`` to its end in a throwaway container on this network and remove it."""
        name = f"bottle-test-run-{secrets.token_hex(4)}"
        container = self.start(name, command, environment=environment, binds=binds)
        try:
            try:
                status = container.wait(timeout=timeout)
            except Exception as exc:  # the SDK raises a transport error on timeout
                raise TimeoutError(f"{command!r} did not finish within {timeout}s") from exc
            return RunResult(
                status.get("StatusCode", -1),
                container.logs(stdout=True, stderr=False).decode("utf-8", "replace"),
                container.logs(stdout=False, stderr=True).decode("utf-8", "replace"),
            )
        finally:
            _remove_quietly(container)


@pytest.fixture(scope="session")
def internet(docker_client, server_image):
    """An internal docker network standing for the internet; ``internet.name`` is its name."""
    made = Internet.create(docker_client, server_image, resource_labels())
    try:
        yield made
    finally:
        # Containers someone left attached (a failed bottle, a throwaway run) would block the removal.
        made.close()


def _shared_dir(tmp_path_factory, name: str) -> Path:
    """A host directory a server container mounts, writable by whatever uid the server runs as."""
    directory = tmp_path_factory.mktemp(name)
    directory.chmod(0o777)
    return directory


class ServerHandle:
    """A test server container and the host folder it logs its requests to (one JSON line each)."""

    def __init__(self, container, directory: Path, ip: str):
        self.container = container
        self.directory = directory
        self.ip = ip  # its address on ``internet``, for probes that try to bypass the proxy
        self.log_path = directory / "requests.jsonl"

    def requests(self) -> list[dict]:
        """Every request received since the last reset, oldest first (credential headers hashed)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def reset(self) -> None:
        """Forget the request log."""
        self.log_path.write_text("", encoding="utf-8")

    def output(self) -> str:
        """The server's own output (for a failing test's message)."""
        return self.container.logs().decode("utf-8", "replace")


class ModelServer(ServerHandle):
    """Handle on the scripted model server: set its replies, read what it was sent.

    A script is a list of replies served in order to ``POST /v1/messages``:
    a string (text), or ``{"text": ...}``, ``{"tool_use": {"name": ..., "input": {...}}}``
    (or both, or a list of tool uses). Once the script runs out every reply is ``pong``.
    """

    host = MODEL_HOST

    def __init__(self, container, directory: Path, ip: str):
        super().__init__(container, directory, ip)
        self.script_path = directory / "script.json"
        self._script: list = []
        self._served_before = 0

    def set_script(self, replies: list) -> None:
        """Replace the replies still to come with ``replies`` (the server reloads a file written anew)."""
        tmp = self.directory / f".script-{secrets.token_hex(4)}"
        tmp.write_text(json.dumps(replies), encoding="utf-8")
        tmp.chmod(0o666)
        os.replace(tmp, self.script_path)
        self._script, self._served_before = list(replies), len(self.messages())

    def remaining_script(self) -> list:
        """The replies not served yet (the server serves one per ``POST /v1/messages``)."""
        return self._script[len(self.messages()) - self._served_before:]

    def messages(self) -> list[dict]:
        """The bodies of the ``POST /v1/messages`` requests received since the last reset."""
        return [r["body"] for r in self.requests() if r["method"] == "POST" and r["path"].split("?")[0] == "/v1/messages"]

    def system_prompts(self) -> list[str]:
        """The system prompt of each ``POST /v1/messages`` request, its text blocks joined by newlines."""
        prompts = []
        for body in self.messages():
            system = body.get("system") or ""
            if isinstance(system, list):
                system = "\n".join(block.get("text", "") for block in system if isinstance(block, dict))
            prompts.append(system)
        return prompts

    def require_credentials(self, *values: str) -> None:
        """Answer ``POST /v1/messages`` only when its x-api-key or authorization header is one of ``values``."""
        import hashlib

        accept = ["sha256:" + hashlib.sha256(value.encode()).hexdigest() for value in values]
        tmp = self.directory / f".auth-{secrets.token_hex(4)}"
        tmp.write_text(json.dumps({"accept": accept}), encoding="utf-8")
        tmp.chmod(0o666)
        os.replace(tmp, self.directory / "auth.json")

    def reset(self) -> None:
        """Forget the script, the accepted credentials and the request log."""
        self.set_script([])
        self.require_credentials()
        super().reset()


@pytest.fixture(scope="session")
def model_server_session(internet, test_ca, tmp_path_factory) -> ModelServer:
    """The session's model server, answering as ``api.anthropic.com`` on ``internet``."""
    directory = _shared_dir(tmp_path_factory, "model-server")
    cert, key = test_ca.issue(MODEL_HOST, directory=directory)
    (directory / "requests.jsonl").touch(mode=0o666)
    container = None
    try:
        container = internet.start(
            f"bottle-test-model-{secrets.token_hex(4)}",
            ["python3", "/opt/bottle-test/model_server.py", "--cert", f"/srv/{cert.name}", "--key", f"/srv/{key.name}",
             "--script", "/srv/script.json", "--log", "/srv/requests.jsonl", "--auth", "/srv/auth.json"],
            aliases=[MODEL_HOST],
            binds={str(directory): {"bind": "/srv", "mode": "rw"}},
        )
        wait_until_listening(container, "model server listening on https")
        server = ModelServer(container, directory, internet.ip_of(container))
        server.reset()
        yield server
    finally:
        if container is not None:
            _remove_quietly(container)


@pytest.fixture
def model_server(model_server_session) -> ModelServer:
    """The model server with an empty script and request log for this test."""
    model_server_session.reset()
    return model_server_session


class Origin(ServerHandle):
    """Handle on the web origin answering ``hello from <host>`` as each of ``ORIGIN_NAMES``."""

    names = ORIGIN_NAMES


@pytest.fixture(scope="session")
def origin_session(internet, test_ca, tmp_path_factory) -> Origin:
    """The session's web origin on ``internet``: HTTPS on 443 and 8443, plain HTTP on 80 and 8000, HTTP/2 on 9443
    (trailers both ways), and a protocol that is not HTTP on 22 (a banner, then lines echoed)."""
    directory = _shared_dir(tmp_path_factory, "origin")
    cert, key = test_ca.issue(*ORIGIN_NAMES, directory=directory)
    (directory / "requests.jsonl").touch(mode=0o666)
    container = None
    try:
        container = internet.start(
            f"bottle-test-origin-{secrets.token_hex(4)}",
            ["python3", "/opt/bottle-test/origin.py", "--cert", f"/srv/{cert.name}", "--key", f"/srv/{key.name}",
             "--port", "443", "--port", "8443", "--http-port", "80", "--http-port", "8000", "--tcp-port", "22",
             "--h2-port", "9443"],
            aliases=list(ORIGIN_NAMES),
            environment={"ORIGIN_LOG": "/srv/requests.jsonl"},
            binds={str(directory): {"bind": "/srv", "mode": "rw"}},
        )
        wait_until_listening(container, "origin listening on tcp port")
        yield Origin(container, directory, internet.ip_of(container))
    finally:
        if container is not None:
            _remove_quietly(container)


@pytest.fixture
def origin(origin_session) -> Origin:
    """The web origin with an empty request log for this test."""
    origin_session.reset()
    return origin_session


@pytest.fixture(scope="session")
def outbound_env(internet, test_ca, model_server_session, origin_session) -> dict[str, str]:
    """Env vars that put a bottle's bundle on ``internet`` and make its proxy trust ``test_ca``.

    Apply them with ``monkeypatch.setenv`` before launching a bottle; the
    model server and origin are already up when this is given.
    """
    return {
        "BOTTLE_DOCKER_OUTBOUND_NETWORK": internet.name,
        "BOTTLE_UPSTREAM_CA_FILE": str(test_ca.pem_path),
        "BOTTLE_MODEL_HOST": MODEL_HOST,
    }


@pytest.fixture(scope="session")
def internet_egress(internet) -> dict:
    """A bottle's ``egress`` table opting the test network in, to extend with ``allow``.

    The test servers have private addresses (a Docker network); the bundle
    refuses those unless the bottle opts their range in, as a user would for
    a server on their own machine.
    """
    return {"allow_private": [internet.subnet]}


class GitForge(ServerHandle):
    """Handle on the test git forge answering as ``git.test``: smart HTTP over TLS, a token required.

    Its bare repositories live in ``repos`` on the host (``/srv/repos`` in the server).
    """

    host = "git.test"

    def __init__(self, container, directory: Path, ip: str, token: str):
        super().__init__(container, directory, ip)
        self.token = token
        self.repos = directory / "repos"

    def url(self, name: str) -> str:
        return f"https://{self.host}/{name}.git"


@pytest.fixture(scope="session")
def git_forge_session(internet, test_ca, tmp_path_factory) -> GitForge:
    """The session's git forge on ``internet``; every request needs basic auth with ``git_forge.token``."""
    directory = _shared_dir(tmp_path_factory, "git-forge")
    (directory / "repos").mkdir()
    cert, key = test_ca.issue(GitForge.host, directory=directory)
    (directory / "requests.jsonl").touch(mode=0o666)
    token = secrets.token_hex(20)
    container = None
    try:
        container = internet.start(
            f"bottle-test-git-{secrets.token_hex(4)}",
            ["python3", "/opt/bottle-test/git_server.py", "--cert", f"/srv/{cert.name}", "--key", f"/srv/{key.name}"],
            aliases=[GitForge.host],
            environment={"GIT_SERVER_TOKEN": token, "GIT_SERVER_LOG": "/srv/requests.jsonl",
                         "GIT_SERVER_ROOT": "/srv/repos"},
            binds={str(directory): {"bind": "/srv", "mode": "rw"}},
        )
        wait_until_listening(container, "git server listening on https")
        yield GitForge(container, directory, internet.ip_of(container), token)
    finally:
        if container is not None:
            _remove_quietly(container)


@pytest.fixture
def git_forge(git_forge_session) -> GitForge:
    """The git forge with an empty request log for this test."""
    git_forge_session.reset()
    return git_forge_session


# --- backends ------------------------------------------------------------------


@pytest.fixture(scope="session")
def smol_doctor() -> dict:
    """``bottle doctor``'s report for smol: one bounded throwaway boot per engine and host, cached on disk."""
    doctor = pytest.importorskip("bottle_smol.doctor", reason="bottle-smol is not installed")
    return doctor.diagnose()


@pytest.fixture(params=["docker", "smol", "k8s"])
def backend(request) -> str:
    """Each backend in turn; smol is skipped with the reason ``bottle doctor`` found when no guest boots here;
    k8s needs the test cluster (``make cluster``), and fails without it."""
    if request.param == "smol":
        report = request.getfixturevalue("smol_doctor")
        if not report["ok"]:
            pytest.skip(f"smol: bottle doctor: {report['reason']}")
    if request.param == "k8s":
        request.getfixturevalue("k8s_cluster")
    return request.param


@pytest.fixture(params=["cold", "pooled"])
def start(request) -> str:
    """How the bottle starts: launched for the test (cold), or claimed from a warm pool filled for it (pooled).

    A claimed pooled bottle must behave exactly as a cold one: the tests that take this fixture prove it.
    Only the docker backend keeps a warm pool, so the pooled start is paired with docker alone
    (:func:`pytest_collection_modifyitems`).
    """
    return request.param


def pytest_collection_modifyitems(config, items) -> None:
    """Leave out the pairs that do not exist: a pooled start on a backend that keeps no pool."""
    kept, dropped = [], []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        backend = params.get("backend", params.get("seat", "docker"))
        (dropped if params.get("start") == "pooled" and backend != "docker" else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def k8s_cluster(request, monkeypatch) -> str:
    """The test cluster's kubeconfig, with its node's containerd as where images go; a failure without one.

    A test that uses the stand-in internet gets it on the cluster too: its
    subnet linked to the pod network (:func:`k8s_internet`) and its servers'
    names given to the bundle pod (``BOTTLE_K8S_BUNDLE_HOSTS``), as Docker's
    network aliases give them to the docker backend's bundle.
    """
    return k8s_environment(request, monkeypatch, internet="outbound_env" in request.fixturenames,
                           forge="git_forge" in request.fixturenames)


def k8s_environment(request, patch: pytest.MonkeyPatch, *, internet: bool, forge: bool = False) -> str:
    """Point ``patch``'s environment at the test cluster (and at the stand-in internet when asked); its kubeconfig."""
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or not Path(kubeconfig).is_file():
        pytest.fail("k8s: no test cluster (KUBECONFIG unset or missing): start it with `make cluster` and export "
                    "the KUBECONFIG and CONTAINERD_ADDRESS it prints (`make test` does both)")
    if os.environ.get("CONTAINERD_ADDRESS"):
        patch.setenv("BOTTLE_K8S_CONTAINERD_ADDRESS", os.environ["CONTAINERD_ADDRESS"])
    if internet:
        request.getfixturevalue("k8s_internet")
        names = {MODEL_HOST: request.getfixturevalue("model_server_session").ip,
                 **{name: request.getfixturevalue("origin_session").ip for name in ORIGIN_NAMES}}
        if forge:
            names[GitForge.host] = request.getfixturevalue("git_forge_session").ip
        patch.setenv("BOTTLE_K8S_BUNDLE_HOSTS", ",".join(f"{name}={ip}" for name, ip in names.items()))
    return kubeconfig


@pytest.fixture(scope="session")
def k8s_internet(internet):
    """The stand-in internet's subnet opened to the test cluster's pods (``scripts/cluster.sh link``), for the session.

    Every pod may then connect there, the agent's too: the agent pod's own
    packet filter is what must stop it, as on a cluster whose pods reach the
    internet.
    """
    script = Path(__file__).resolve().parents[2] / "scripts" / "cluster.sh"
    subnet = internet.subnet
    linked = subprocess.run([str(script), "link", subnet], capture_output=True, text=True)
    if linked.returncode != 0:
        pytest.fail(f"k8s: `scripts/cluster.sh link {subnet}` failed: {linked.stderr.strip()}")
    try:
        yield subnet
    finally:
        subprocess.run([str(script), "unlink", subnet], capture_output=True)


# --- the agent's seat on docker and on k8s -------------------------------------------------------------------


@pytest.fixture(params=["docker", "k8s"])
def seat(request) -> str:
    """docker, then k8s (the test cluster, as :func:`backend` gives it): the backends whose agent sits behind a
    bundle the tests can reach from the host (smol has its own tests, test_smol.py)."""
    if request.param == "k8s":
        request.getfixturevalue("k8s_cluster")
    return request.param


@pytest.fixture(scope="module", params=["docker", "k8s"])
def module_seat(request, outbound_env):
    """:func:`seat` for a module's shared bottle: the backend, its environment (the stand-in internet's, and on
    k8s the test cluster's) set for the whole module, so the suite grows by one bottle per backend, not per test."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in outbound_env.items():
            patch.setenv(key, value)
        if request.param == "k8s":
            k8s_environment(request, patch, internet=True)
        yield request.param
