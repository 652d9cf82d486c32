"""A cold docker bottle's seal (the bundle's packet filter set, the agent's default route removed): its
one-shots run while the launch goes on, and the bottle runs nothing before both have ended well.

Probes run from the agent's seat, as its very first command after the launch (no provisioning before it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bottle_core import session
from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec

from .bottles import docker_plugins, tcp_probe, write_manifest

pytestmark = pytest.mark.integration

#: An ICMP echo to the bundle, on an unprivileged ICMP socket: the packet filter refuses every packet it does not
#: list (``icmp-port-unreachable``), where a bundle without it answers.
ECHO = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.setsockopt(socket.SOL_IP, 11, 1)  # IP_RECVERR: the refusal comes back as an error
s.settimeout(10)
s.connect((sys.argv[1], 0))
s.send(struct.pack("!BBHHH", 8, 0, 0, 0, 1) + b"bottle")
try:
    s.recv(64)
    print("answered")
except ConnectionRefusedError:
    print("refused")
"""


@pytest.fixture
def launch(tmp_path: Path):
    """``launch()``: the launch context of a cold docker bottle of a plain agent, nothing provisioned."""
    manifest = Manifest.load(write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"probe": {"bottle": "dev"}}}))
    plugins = docker_plugins()

    def launch():
        plan = session.prepare(plugins, BottleSpec(manifest=manifest, agent="probe", copy_cwd=False, cwd=tmp_path))
        return plugins.call_first("launch", plan=plan)

    return launch


def default_routes(bottle) -> list[str]:
    routes = bottle.exec(["cat", "/proc/net/route"]).text().splitlines()[1:]
    return [line for line in routes if line.split()[1] == "00000000"]


def test_the_agents_first_command_finds_the_bundles_filter_set_even_when_it_is_set_late(launch, monkeypatch):
    # The packet filter's one-shot made slow: a bottle that did not wait for it would let this echo through.
    monkeypatch.setattr(contract, "NETFILTER_COMMAND",
                        ["sh", "-c", "sleep 3 && exec " + " ".join(contract.NETFILTER_COMMAND)])
    with launch() as bottle:
        echo = bottle.exec(["python3", "-c", ECHO, bottle.plan.network.bundle_ip])
        assert echo.text().strip() == "refused", echo.stderr
        assert default_routes(bottle) == []
        # The benign counterpart: the proxy, which the filter lists, takes the agent's connection.
        assert tcp_probe(bottle, bottle.plan.network.bundle_ip, bottle.plan.proxy.port)


def test_the_agents_first_command_finds_its_default_route_gone(launch):
    with launch() as bottle:
        assert default_routes(bottle) == []
        routes = bottle.exec(["cat", "/proc/net/route"]).text().splitlines()[1:]
        assert len(routes) == 1, f"only the bottle subnet is routed: {routes}"


def test_a_bottle_whose_packet_filter_could_not_be_set_runs_nothing(launch, monkeypatch):
    monkeypatch.setattr(contract, "NETFILTER_COMMAND", ["sh", "-c", "echo no rules taken >&2; exit 3"])
    with launch() as bottle:
        for attempt in range(2):  # refused every time, not only the first
            with pytest.raises(BottleRuntimeError, match="could not set the bundle's packet filter.*no rules taken"):
                bottle.exec(["touch", "/tmp/ran"])
        with pytest.raises(BottleRuntimeError, match="packet filter"):
            bottle.exec_bundle(["true"])
        with pytest.raises(BottleRuntimeError, match="packet filter"):
            bottle.ready()
        # Files could go in (nothing runs that way), but no command ran: the marker was never made.
        with pytest.raises(BottleRuntimeError):
            bottle.copy_out("/tmp/ran")
