"""The agent and bundle images against the real engine: reuse, the agent's tools, the bundle's contract."""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest
from bottle_core.bundle import contract
from bottle_docker.bundle import files_tar
from bottle_core.plan import EgressPlan
from bottle_docker.image_build import ensure_images

from .conftest import resource_labels

pytestmark = pytest.mark.integration

BASE = os.environ.get("BOTTLE_BASE_IMAGE") or "debian:bookworm-slim"
CA_CERT = contract.CA_CERT
READY = contract.READY_LINE.decode()


@pytest.fixture(scope="module")
def built(docker_client) -> dict[str, str]:
    """The images' tags, built here when missing (uses BOTTLE_CLAUDE_BINARY when set, else fetches claude)."""
    started = time.monotonic()
    tags = ensure_images(docker_client, BASE)
    print(f"\nensure_images (first call this session): {time.monotonic() - started:.1f}s -> {tags}")
    return tags


def run(client, image: str, command: list[str], *, timeout: float = 60, **options) -> tuple[int, str]:
    """Run ``command`` to its end in a throwaway container; its exit code and output."""
    container = client.containers.create(image, command, labels=resource_labels(), **options)
    try:
        container.start()
        status = container.wait(timeout=timeout)
        return status["StatusCode"], container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


class Throwaway:
    """Networks and containers a test creates, all removed at the end, containers first."""

    def __init__(self, client):
        self.client = client
        self.containers = []
        self.networks = []

    def network(self):
        network = self.client.networks.create(f"bottle-test-images-{secrets.token_hex(4)}", driver="bridge",
                                              internal=True, labels=resource_labels())
        self.networks.append(network)
        return network

    def start(self, image: str, network, *, alias: str, files: dict[str, bytes] | None = None,
              dns: list[str] | None = None, **options):
        """Create, give ``files`` (absolute path -> bytes), then start a container on ``network``."""
        api = self.client.api
        networking = api.create_networking_config({network.name: api.create_endpoint_config(aliases=[alias])})
        created = api.create_container(
            image, name=f"bottle-test-{alias}-{secrets.token_hex(4)}", labels=resource_labels(),
            host_config=api.create_host_config(network_mode=network.name, dns=dns), networking_config=networking,
            **options,
        )
        container = self.client.containers.get(created["Id"])
        self.containers.append(container)
        if files:
            api.put_archive(container.id, "/", files_tar(files))
        container.start()
        return container

    def remove_all(self) -> None:
        import docker.errors

        for resource in [*self.containers, *self.networks]:
            try:
                resource.remove(**({"force": True} if resource in self.containers else {}))
            except docker.errors.NotFound:
                pass


@pytest.fixture
def throwaway(docker_client):
    made = Throwaway(docker_client)
    try:
        yield made
    finally:
        made.remove_all()


def wait_for_ready(container, timeout: float = 30.0) -> float:
    """Seconds until the bundle printed its ready line; fails with its output if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if READY in container.logs(stdout=True, stderr=False).decode("utf-8", "replace"):
            return time.monotonic() - started
        container.reload()
        if container.status in ("exited", "dead"):
            break
        time.sleep(0.1)
    pytest.fail(f"bundle not ready within {timeout}s:\n{container.logs().decode('utf-8', 'replace')}",
                pytrace=False)


def start_bundle(throwaway: Throwaway, tag: str, network, allow: str = "", dns: list[str] | None = None):
    """The bundle image alone, its proxy on every address, allowing ``allow`` (comma-separated).

    The test network's private subnet is opted in, as a bottle opts in a server on its own machine.
    """
    network.reload()
    subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]
    egress = EgressPlan(allow=allow.split(",") if allow else [], allow_private=[subnet]).model_dump()
    config = {"proxy": {"listen_host": "0.0.0.0", "port": 8080}, "egress": egress, "listening_ports": [8080],
              "git_gate": {"port": 9418, "remotes": {}}, "supervise": {"mode": "off"}, "secrets": contract.SECRETS}
    files = {contract.CONFIG: json.dumps(config).encode(), contract.SECRETS: b"[]"}
    return throwaway.start(tag, network, alias="bundle", environment=contract.bundle_environment(), files=files,
                           dns=dns)


def test_images_are_tagged_by_content_hash_and_labelled(docker_client, built):
    for role, tag in built.items():
        assert tag.startswith(f"bottle-{role}:") and len(tag.split(":")[1]) == 12
        assert docker_client.images.get(tag).labels.get("bottle.image") == role


def test_a_second_ensure_builds_nothing(docker_client, built):
    ids = {role: docker_client.images.get(tag).id for role, tag in built.items()}
    lines = []
    started = time.monotonic()
    again = ensure_images(docker_client, BASE, progress=lambda role, line: lines.append(line))
    elapsed = time.monotonic() - started
    print(f"\nensure_images (cached): {elapsed:.2f}s")
    assert again == built
    assert lines == []  # the builder was never called
    assert {role: docker_client.images.get(tag).id for role, tag in again.items()} == ids


def test_agent_image_runs_claude_as_uid_1000_with_git_and_curl(docker_client, built):
    script = "id -u; id -g; echo $HOME; pwd; claude --version; git --version; curl --version | head -1"
    code, output = run(docker_client, built["agent"], ["sh", "-c", script], network_mode="none")
    assert code == 0, output
    uid, gid, home, cwd, claude, git, curl = output.splitlines()[:7]
    assert (uid, gid, home, cwd) == ("1000", "1000", "/home/agent", "/workspace")
    assert "Claude Code" in claude
    assert git.startswith("git version") and curl.startswith("curl ")


def test_bundle_says_ready_once_and_shows_its_ca_certificate(docker_client, built, throwaway):
    bundle = start_bundle(throwaway, built["bundle"], throwaway.network())
    seconds = wait_for_ready(bundle)
    print(f"\nbundle ready after {seconds:.1f}s")
    stdout = bundle.logs(stdout=True, stderr=False).decode()
    assert stdout.splitlines().count(READY) == 1
    code, cert = bundle.exec_run(["cat", CA_CERT], user="nobody")  # the certificate is public
    assert code == 0 and cert.startswith(b"-----BEGIN CERTIFICATE-----"), cert
    code, mode = bundle.exec_run(["stat", "-c", "%a %U", CA_CERT.replace("-cert.pem", ".pem")])
    assert code == 0 and mode.decode().split() == ["600", "bundle"]  # the key stays readable by the proxy alone


def test_bundle_allows_listed_hosts_and_refuses_others_with_a_reason(docker_client, built, throwaway):
    network = throwaway.network()
    bundle = start_bundle(throwaway, built["bundle"], network, allow="allowed.test:8000")
    # A small origin on the same network answering as allowed.test (python3 is in the bundle image).
    throwaway.start(built["bundle"], network, alias="allowed.test",
                    entrypoint=["python3", "-m", "http.server", "8000"],
                    working_dir="/opt/bottle/bottle_core/bundle/image")
    wait_for_ready(bundle)
    client = throwaway.start(built["agent"], network, alias="client", command=["sleep", "120"])

    def curl(*args: str) -> str:
        """What curl printed on stdout (its -w report included); its error text, if any, is left out."""
        _code, (out, _err) = client.exec_run(["curl", "-sS", "--max-time", "10", "-x", "http://bundle:8080", *args],
                                             demux=True)
        return (out or b"").decode("utf-8", "replace")

    denied = curl("-w", "\n%{http_code}", "http://denied.test/")
    assert denied.endswith("\n403"), denied
    assert "bottle: refused (rule not-allowed): denied.test is not on this bottle's allow-list" in denied

    tunnel = curl("-o", "/dev/null", "-w", "%{http_connect}", "https://evil.test/")
    assert tunnel == "403", tunnel

    allowed = ""
    for _ in range(20):  # the origin may still be starting
        allowed = curl("-w", "\n%{http_code}", "http://allowed.test:8000/daemons.py")
        if allowed.endswith("\n200"):
            break
        time.sleep(0.25)
    assert allowed.endswith("\n200") and "The bundle's daemons, in one table" in allowed, allowed

    decisions = [json.loads(line) for line in bundle.logs(stdout=True, stderr=False).decode().splitlines()
                 if line.startswith("{")]
    egress = [(d["host"], d["port"], d["decision"], d["rule"]) for d in decisions if d.get("log") == "egress"]
    assert ("denied.test", 80, "deny", "not-allowed") in egress
    assert ("evil.test", 443, "deny", "not-allowed") in egress
    assert ("allowed.test", 8000, "allow", "allowed.test:8000") in egress
    assert all({"id", "time", "status", "bytes_in", "bytes_out"} <= d.keys() for d in decisions)


def test_the_bundle_resolves_no_name_of_a_refused_request(docker_client, built, throwaway, server_image):
    """Refused requests are answered before any lookup: the resolver is asked only for the allowed name."""
    network = throwaway.network()
    origin = throwaway.start(built["bundle"], network, alias="origin-by-ip",
                             entrypoint=["python3", "-m", "http.server", "8000"],
                    working_dir="/opt/bottle/bottle_core/bundle/image")
    origin.reload()
    origin_ip = origin.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    resolver = throwaway.start(server_image, network, alias="resolver", command=[
        "dnsmasq", "--no-daemon", "--log-queries", "--log-facility=-", "--no-resolv", "--no-hosts",
        "--user=root", f"--address=/allowed.test/{origin_ip}", f"--address=/wild.test/{origin_ip}",
        f"--address=/refused.test/{origin_ip}"])
    resolver.reload()
    resolver_ip = resolver.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    bundle = start_bundle(throwaway, built["bundle"], network, allow="allowed.test:8000,*.wild.test:8000",
                          dns=[resolver_ip])
    wait_for_ready(bundle)
    client = throwaway.start(built["agent"], network, alias="client", command=["sleep", "120"])

    def curl(*args: str) -> str:
        _code, out = client.exec_run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                      "-x", "http://bundle:8080", *args])
        return out.decode("utf-8", "replace")

    refused = {
        "http://not-listed.refused.test:8000/": "not-allowed",
        "https://tunnel.refused.test/": "not-allowed",
        "http://allowed.test:22/": "port-not-allowed",
        "http://6d792070617373776f7264.wild.test:8000/": "encoded-label",
    }
    for url in refused:
        assert "403" in curl(url), url
    assert "403" in curl("-H", "Host: fronted.refused.test:8000", "http://allowed.test:8000/")
    assert curl("http://allowed.test:8000/daemons.py").endswith("200")
    asked = [line for line in resolver.logs().decode("utf-8", "replace").splitlines() if "query[" in line]
    assert any("allowed.test" in line for line in asked), asked  # the resolver is asked for what is allowed
    assert not [line for line in asked if "refused.test" in line or "wild.test" in line], asked
    rules = [json.loads(line).get("rule") for line in bundle.logs(stdout=True, stderr=False).decode().splitlines()
             if line.startswith("{")]
    assert set(refused.values()) | {"host-mismatch"} <= set(rules)
