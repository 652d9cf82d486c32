"""One agent environment for every backend: what docker and smol each hand their engine, for the same Plan."""

from __future__ import annotations

import pytest

from bottle_core import agent
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec
from bottle_docker import agent as docker_agent
from bottle_smol import images as smol_images
from bottle_smol import network as smol_network
from bottle_smol.machine import create_options
from bottle_smol.prepare import prepare_plan

from .test_smol_fake import fake_smolvm  # noqa: F401  (fixture)

BASE_ID = "sha256:" + "b" * 64


class RecordingAPI:
    """Just enough of docker's low-level API for ``create_agent``: it records what the container is given."""

    def __init__(self) -> None:
        self.created: list[dict] = []

    def create_container(self, image, **kwargs):
        self.created.append({"image": image, **kwargs})
        return {"Id": "agent-id"}

    def create_host_config(self, **kwargs):
        return kwargs

    def create_networking_config(self, endpoints):
        return endpoints

    def create_endpoint_config(self, **kwargs):
        return kwargs


class RecordingClient:
    def __init__(self) -> None:
        self.api = RecordingAPI()


@pytest.fixture
def smol_plan(manifest_factory, tmp_path, monkeypatch, fake_smolvm):  # noqa: F811
    claude = tmp_path / "claude"
    claude.write_bytes(b"#!/bin/sh\necho 2.0.0\n")
    claude.chmod(0o755)
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(claude))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(smol_network, "engine_subnets", lambda: [])
    monkeypatch.setattr(smol_images, "base_image_id", lambda base: BASE_ID)
    manifest = Manifest.load(manifest_factory({
        "bottles": {"dev": {"env": {"FOO": "bar"}, "secrets": {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["x.test"]}}}},
        "agents": {"demo": {"prompt": "hi", "bottle": "dev"}},
    }))
    return prepare_plan(BottleSpec(manifest, "demo", cwd=tmp_path), tmp_path / "state")


def smol_environment(options: list[str]) -> dict[str, str]:
    pairs = [options[i + 1] for i, flag in enumerate(options) if flag == "-e"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_docker_and_smol_give_the_agent_the_same_environment(smol_plan):
    client = RecordingClient()
    docker_agent.create_agent(client, smol_plan, "bottle-agent:x", created=[])
    (created,) = client.api.created
    docker_env = created["environment"]
    smol_env = smol_environment(create_options(smol_plan))
    assert docker_env == smol_env == agent.environment(smol_plan)
    # What each must carry: the proxy, the CA, a placeholder (never a value), the manifest's env.
    assert docker_env["HTTPS_PROXY"] == f"http://{smol_plan.network.bundle_ip}:8080"
    assert smol_plan.network.bundle_ip in docker_env["NO_PROXY"].split(",")
    assert docker_env["NODE_EXTRA_CA_CERTS"] == smol_plan.guest.ca_cert
    assert docker_env["TOKEN"].startswith("bottle-placeholder-token-")
    assert docker_env["FOO"] == "bar"


def test_smol_plans_the_same_image_names_docker_plans(smol_plan, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from bottle_docker import backend, engine

    fake = SimpleNamespace(api=SimpleNamespace(networks=lambda: []),
                           images=SimpleNamespace(get=lambda name: SimpleNamespace(id=BASE_ID)))
    monkeypatch.setattr(engine, "client", lambda: fake)
    spec = BottleSpec(Manifest.load(smol_plan.manifest), "demo", cwd=tmp_path)
    docker_plan = backend.prepare(spec=spec, stage_dir=tmp_path / "docker-state")
    assert docker_plan.images == smol_plan.images
    assert smol_plan.images["agent"].startswith("bottle-agent:") and ":latest" not in smol_plan.images["agent"]
