"""Bottle subnets: free of every network in use, the bundle and agent at fixed places in them."""

from __future__ import annotations

import ipaddress
import random

import pytest

from bottle_core import addressing
from bottle_core.errors import BottleRuntimeError


def test_pick_subnet_skips_used_ones():
    used = [ipaddress.ip_network("10.213.0.0/17"), ipaddress.ip_network("10.213.200.0/21")]
    rng = random.Random(7)
    for _ in range(50):
        subnet = addressing.pick_subnet(used, rng)
        assert subnet.subnet_of(addressing.POOL) and subnet.prefixlen == 24
        assert not any(subnet.overlaps(u) for u in used)
    with pytest.raises(BottleRuntimeError, match="no free /24"):
        addressing.pick_subnet([addressing.POOL])


def test_addresses_inside_the_subnet():
    subnet = ipaddress.ip_network("10.213.5.0/24")
    assert addressing.bundle_ip(subnet) == "10.213.5.2"
    assert addressing.agent_ip(subnet) == "10.213.5.3"


def test_host_routes(tmp_path):
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert addressing.host_routes(route) == [ipaddress.ip_network("192.168.0.0/24")]
