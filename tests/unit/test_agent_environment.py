"""One agent environment for every backend: what docker and smol each hand their engine, for the same Plan.

This test needs both backends installed, so it lives with the repository's tests, not with either distribution.
"""

from __future__ import annotations

import pytest

from bottle_core import agent
from bottle_docker import agent as docker_agent
from bottle_smol.machine import create_options


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
def plan(plan_factory):
    return plan_factory({
        "bottles": {"dev": {"env": {"FOO": "bar"}, "secrets": {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["x.test"]}}}},
        "agents": {"demo": {"prompt": "hi", "bottle": "dev"}},
    })


def smol_environment(options: list[str]) -> dict[str, str]:
    pairs = [options[i + 1] for i, flag in enumerate(options) if flag == "-e"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_docker_and_smol_give_the_agent_the_same_environment(plan):
    client = RecordingClient()
    docker_agent.create_agent(client, plan, "bottle-agent:x", created=[])
    (created,) = client.api.created
    docker_env = created["environment"]
    sized = plan.model_copy(update={"backend_options": {"cpus": 1, "mem_mib": 512}})  # what smol's prepare records
    smol_env = smol_environment(create_options(sized))
    assert docker_env == smol_env == agent.environment(plan)
    # What each must carry: the proxy, the CA, a placeholder (never a value), the manifest's env.
    assert docker_env["HTTPS_PROXY"] == f"http://{plan.network.bundle_ip}:8080"
    assert plan.network.bundle_ip in docker_env["NO_PROXY"].split(",")
    assert docker_env["NODE_EXTRA_CA_CERTS"] == plan.guest.ca_cert
    assert docker_env["TOKEN"].startswith("bottle-placeholder-token-")
    assert docker_env["FOO"] == "bar"


def test_roots_commands_run_without_the_manifests_env(plan_factory):
    plan = plan_factory({
        "bottles": {"dev": {"env": {"PATH": "/home/agent/.claude/skills/x:/usr/bin", "LD_PRELOAD": "/workspace/x.so",
                                    "HTTPS_PROXY": "http://elsewhere.test:1", "FOO": "bar"}}},
        "agents": {"demo": {"bottle": "dev"}},
    })
    own = agent.environment(plan)
    assert own["PATH"].startswith("/home/agent/.claude/skills/x") and own["LD_PRELOAD"] == "/workspace/x.so"
    undone = agent.root_environment(plan)
    assert undone == {"PATH": agent.SYSTEM_PATH, "LD_PRELOAD": "", "FOO": "",
                      "HTTPS_PROXY": f"http://{plan.network.bundle_ip}:8080"}
    # What docker hands an exec: root's with the manifest's env undone, the agent user's with nothing added.
    from bottle_docker.container import DockerBottle

    bottle = DockerBottle.__new__(DockerBottle)
    bottle.plan = plan
    assert bottle._env("0", {"X": "1"}) == {**undone, "X": "1"} and bottle._env("root", None) == undone
    assert bottle._env(None, {"X": "1"}) == {"X": "1"} and bottle._env(str(plan.guest.uid), None) == {}
