"""The bottle network at launch: a subnet another bottle took since prepare gives a new Plan, never a changed one."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import docker.errors
import pytest

from bottle_core.plan import Plan
from bottle_docker import network


class OverlappingEngine:
    """Refuses the first ``taken`` network creations as overlapping, then creates; records every subnet asked for."""

    def __init__(self, taken: int):
        self.taken = taken
        self.asked: list[str] = []
        self.networks = SimpleNamespace(create=self.create)
        self.api = SimpleNamespace(networks=lambda: [])

    def create(self, name, **kwargs):
        self.asked.append(kwargs["ipam"]["Config"][0]["Subnet"])
        if len(self.asked) <= self.taken:
            raise docker.errors.APIError("Pool overlaps with other one on this address space")
        return SimpleNamespace(name=name, id="0123456789abcdef" * 4)


def test_a_taken_subnet_gives_a_new_plan_saved_again_and_leaves_the_given_one_alone(plan_factory, monkeypatch):
    monkeypatch.setattr(network, "host_routes", lambda: [])
    plan = plan_factory()
    before = plan.model_dump()
    engine = OverlappingEngine(taken=1)

    used = network.create_for(engine, plan, labels={})

    assert plan.model_dump() == before
    assert used is not plan and used.network.subnet != plan.network.subnet
    assert used.network.subnet in used.egress.refused_networks  # the egress stage never reaches the new network
    assert engine.asked == [plan.network.subnet, used.network.subnet]
    subnet = ipaddress.ip_network(used.network.subnet)
    assert ipaddress.ip_address(used.network.bundle_ip) in subnet and used.proxy.listen_host == used.network.bundle_ip
    assert Plan.read(f"{plan.state_dir}/plan.json") == used


def test_a_free_subnet_keeps_the_plan_as_it_is(plan_factory):
    plan = plan_factory()
    assert network.create_for(OverlappingEngine(taken=0), plan, labels={}) is plan


def test_other_engine_errors_are_not_taken_for_a_taken_subnet(plan_factory):
    class Refusing(OverlappingEngine):
        def create(self, name, **kwargs):
            raise docker.errors.APIError("permission denied")

    with pytest.raises(docker.errors.APIError):
        network.create_for(Refusing(0), plan_factory(), labels={})


def test_engine_subnets_and_gateways_read_the_engines_network_list():
    import ipaddress

    from bottle_docker.network import engine_gateways, engine_subnets

    networks = [{"IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"},
                                     {"Subnet": "fd00::/64", "Gateway": "fd00::1"}]}}, {"IPAM": None}]
    assert engine_subnets(networks) == [ipaddress.ip_network("172.17.0.0/16")]
    assert engine_gateways(networks) == [ipaddress.ip_address("172.17.0.1")]
