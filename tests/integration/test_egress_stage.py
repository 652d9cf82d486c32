"""Where the bundle connects: the egress stage and the packet filter, tried as an attacker would.

An allowed name that leads to a private address, the host's own addresses
inside an opted-in range, and direct connections from inside the bundle with
the proxy's policy bypassed on purpose. Also IPv6 (off in the agent, no host
address on the bottle bridge) and the bundle's own limits.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from bottle_core.bundle import contract

from .bottles import bottle_cli, bottle_of, write_manifest
from .test_isolation import host_addresses

pytestmark = pytest.mark.integration

REFUSED = "EHOSTUNREACH"

# Connects to argv[1]:argv[2]; prints "connected", or the errno's name (the packet filter answers
# "administratively prohibited", which the kernel reports as EHOSTUNREACH).
CONNECT = """
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("connected")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, str(exc)))
"""


@pytest.fixture
def host_server():
    """An HTTP server on every address of the host (0.0.0.0); yields its port."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def gateway_of(internet) -> str:
    """The host's own address on the test network (the bridge's gateway): inside the opted-in range."""
    internet.network.reload()
    return next(c["Gateway"] for c in internet.network.attrs["IPAM"]["Config"] if ":" not in c["Subnet"])


def reachable_from_host(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def curl(bottle, *args: str):
    return bottle.exec(["curl", "-sS", "--max-time", "15", *args])


def manifest_in(folder: Path, egress: dict) -> Path:
    folder.mkdir(exist_ok=True)
    return write_manifest(folder, {"bottles": {"web": {"egress": egress}}, "agents": {"surfer": {"bottle": "web"}}})


@pytest.fixture
def outbound(outbound_env, monkeypatch):
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)


def test_an_allowed_name_resolving_to_a_private_address_is_refused_without_the_opt_in(
        tmp_path, outbound, internet_egress, origin):
    allow = ["allowed.test", "http://allowed.test"]  # HTTPS on 443 and plain HTTP on 80
    closed = manifest_in(tmp_path / "closed", {"allow": allow})
    with bottle_of(closed, "surfer") as bottle:
        tunnel = curl(bottle, "-o", "/dev/null", "-w", "%{http_connect}", "https://allowed.test/")
        assert tunnel.stdout == b"403", tunnel.stderr
        plain = curl(bottle, "-i", "http://allowed.test/path?secret=1")
        head, _, body = plain.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 403")
        assert b"x-bottle-decision: deny; rule=private-address" in head.lower()
        assert b"private-address" in body and b"egress.allow_private" in body
        slug, state_dir = bottle.plan.slug, Path(bottle.plan.state_dir)
    assert origin.requests() == []
    # Each refusal is one decision record, kept after the bottle ended and shown by `bottle logs`.
    shown = bottle_cli("logs", slug, "--egress", "--json")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.decode().splitlines()]
    refused = {(r["method"], r["host"], r["port"], r.get("path")) for r in records
               if r.get("rule") == "private-address" and r.get("stage") == "egress" and r["decision"] == "deny"}
    assert refused == {("CONNECT", "allowed.test", 443, ""), ("GET", "allowed.test", 80, "/path")}
    assert (state_dir / "logs" / "egress.jsonl").exists()

    opened = manifest_in(tmp_path / "opened", {**internet_egress, "allow": allow})
    with bottle_of(opened, "surfer") as bottle:
        assert curl(bottle, "https://allowed.test/").stdout.strip() == b"hello from allowed.test"
        assert curl(bottle, "http://allowed.test/").stdout.strip() == b"hello from allowed.test"
    assert len(origin.requests()) == 2


def test_the_hosts_own_address_is_refused_even_inside_an_opted_in_range(tmp_path, outbound, internet_egress,
                                                                         internet, host_server):
    gateway = gateway_of(internet)
    assert reachable_from_host(gateway, host_server), "control: the host serves on its test-network address"
    manifest = manifest_in(tmp_path, {**internet_egress, "allow": [f"{gateway}:{host_server}"]})
    with bottle_of(manifest, "surfer") as bottle:
        plain = curl(bottle, "-i", f"http://{gateway}:{host_server}/")
        assert plain.stdout.startswith(b"HTTP/1.1 403"), plain.stdout[:200]
        assert b"rule=private-address" in plain.stdout
        tunnel = curl(bottle, "-p", "-o", "/dev/null", "-w", "%{http_connect}", f"http://{gateway}:{host_server}/")
        assert tunnel.stdout == b"403"


def test_the_packet_filter_holds_with_the_proxy_bypassed(tmp_path, outbound, internet_egress, internet, origin,
                                                         host_server):
    manifest = manifest_in(tmp_path, {**internet_egress, "allow": ["allowed.test"]})
    gateway = gateway_of(internet)
    with bottle_of(manifest, "surfer") as bottle:
        plan = bottle.plan

        def connect(user: str, host: str, port: int) -> str:
            return bottle.exec_bundle(["python3", "-c", CONNECT, host, str(port)], user=user).stdout.decode().strip()

        # The egress stage's user reaches the opted-in test origin: the filter is not simply closed.
        assert connect("egress", origin.ip, 443) == "connected"
        # The proxy's user reaches nothing outside, not even that origin: only the egress stage connects out.
        assert connect("bundle", origin.ip, 443) == REFUSED
        # Neither reaches the host: its address inside the opted-in range, docker0, every other address.
        for address in sorted({gateway, *host_addresses()}):
            assert reachable_from_host(address, host_server), f"control: host serves on {address}"
            for user in ("egress", "bundle"):
                assert connect(user, address, host_server) == REFUSED, f"{user} reached host {address}"
        # Private ranges not opted in: the agent's address (a listener there answers the agent itself).
        bottle.exec(["sh", "-c", "nohup python3 -m http.server --bind 0.0.0.0 9998 >/dev/null 2>&1 &"])
        up = bottle.exec(["bash", "-c", "for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/9998) 2>/dev/null "
                                        "&& exit 0; sleep 0.1; done; exit 1"])
        assert up.returncode == 0, "control: the agent's listener answers"
        assert connect("egress", plan.network.agent_ip, 9998) == REFUSED
        # Loopback and the bundle's own addresses: the egress stage cannot be turned back on the bundle.
        assert connect("egress", "127.0.0.1", plan.proxy.port) == REFUSED
        assert connect("egress", plan.network.bundle_ip, plan.proxy.port) == REFUSED
        assert connect("egress", "127.0.0.1", plan.egress.port) == REFUSED
        # The proxy's user reaches the egress stage and nothing else on loopback.
        assert connect("bundle", "127.0.0.1", plan.egress.port) == "connected"
        # Nothing at all over IPv6 in the bundle.
        assert bottle.exec_bundle(["cat", "/proc/net/if_inet6"]).stdout == b""


def test_ipv6_is_off_in_the_agent_and_the_host_has_no_address_on_the_bottle_bridge(tmp_path):
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"probe": {"bottle": "dev"}}})
    with bottle_of(manifest, "probe") as bottle:
        assert bottle.exec(["cat", "/proc/net/if_inet6"]).stdout == b"", "the agent has an IPv6 address"
        assert bottle.exec(["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]).stdout.strip() == b"1"
        probe = ("import socket\n"
                 "for target in [('::1', 22), ('ff02::1%eth0', 9), ('fe80::1%eth0', 443)]:\n"
                 "    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if target[1] != 9 else socket.SOCK_DGRAM)\n"
                 "    s.settimeout(2)\n"
                 "    try:\n"
                 "        s.connect(target) if target[1] != 9 else s.sendto(b'x', target)\n"
                 "        print('reached', target)\n"
                 "    except OSError as exc:\n"
                 "        print('refused', exc.errno)\n")
        lines = bottle.exec(["python3", "-c", probe]).stdout.decode().splitlines()
        assert len(lines) == 3 and all(line.startswith("refused") for line in lines), lines
        network = bottle.client.api.inspect_network(bottle.plan.network.name)
        assert network["EnableIPv6"] is False
        bridge = f"br-{network['Id'][:12]}"
        for family in ("-4", "-6"):
            shown = subprocess.run(["ip", family, "-o", "addr", "show", "dev", bridge], capture_output=True, text=True)
            assert shown.returncode == 0 and shown.stdout == "", f"the host has an address on {bridge}: {shown.stdout}"


#: SETGID (6), SETUID (7), SETPCAP (8): the entry point's, to start each daemon as its own user with none.
ENTRY_POINT_CAPS = f"{(1 << 6) | (1 << 7) | (1 << 8):016x}"


def test_the_bundle_is_limited_and_no_daemon_in_it_holds_a_capability(tmp_path):
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"probe": {"bottle": "dev"}}})
    with bottle_of(manifest, "probe") as bottle:
        bottle.ready()
        host = bottle.client.api.inspect_container(bottle.bundle_id)["HostConfig"]
        assert host["Memory"] == host["MemorySwap"] == contract.LIMITS["memory_bytes"]
        assert host["NanoCpus"] == int(contract.LIMITS["cpus"] * 1e9)
        assert host["PidsLimit"] == contract.LIMITS["pids"]
        assert host["CapDrop"] == ["ALL"]
        assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == ["SETGID", "SETPCAP", "SETUID"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        # The git gate starts on its first request: one answered (a 404) means it runs.
        gate = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}/"
        assert bottle.exec(["curl", "-s", "--noproxy", "*", gate]).text().startswith("bottle-gate: no such repository")
        # PID 1 is the engine's init (forwards signals, reaps). Under it: the entry point, and each daemon.
        script = ("for d in /proc/[0-9]*; do [ \"${d#/proc/}\" = 1 ] && continue; [ \"${d#/proc/}\" = $$ ] && continue; "
                  "cmd=$(tr '\\0' ' ' < $d/cmdline 2>/dev/null) || continue; "
                  "echo \"$(awk '/^Uid:/{print $2} /^CapEff:/{print $2} /^CapPrm:/{print $2} /^CapBnd:/{print $2}' "
                  "$d/status | tr '\\n' ' ')$cmd\"; done")
        rows = [row.split(None, 4) for row in
                bottle.exec_bundle(["bash", "-c", script], user="nobody").stdout.decode().splitlines() if row.strip()]
        processes = {cmd: (uid, prm, eff, bnd) for uid, prm, eff, bnd, cmd in rows}
        entry_point = "-m bottle_core.bundle.image.entrypoint"
        entry = [info for cmd, info in processes.items() if cmd.strip().endswith(entry_point)]
        daemons = {cmd: info for cmd, info in processes.items() if not cmd.strip().endswith(entry_point)}
        names = ("mitmdump", "squid", "image.git_gate", "image.supervisor")
        assert len(entry) == 1 and all(any(n in cmd for cmd in daemons) for n in names[:3]), processes
        # The entry point keeps only what starting the daemons takes, and reads nothing from the agent.
        assert entry[0][0] == "0" and entry[0][1] == entry[0][2] == ENTRY_POINT_CAPS, entry
        # No other process holds a capability, nor could it regain one (bounding set emptied for the daemons).
        assert all(prm == eff == "0000000000000000" for _uid, prm, eff, _bnd in daemons.values()), daemons
        assert all(info[3] == "0000000000000000" for cmd, info in daemons.items() if any(n in cmd for n in names))
        uids = {n: info[0] for cmd, info in daemons.items() for n in names if n in cmd}
        assert uids["squid"] != uids["mitmdump"]  # each stage its own user: only squid's may connect out
