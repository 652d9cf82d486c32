"""The agent's only network peer is the bundle: probes run from inside the agent, as an attacker would."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from bottle_core.bundle import contract

from .bottles import bottle_of, tcp_probe, write_manifest

pytestmark = pytest.mark.integration


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"probe": {"bottle": "dev"}}})


@pytest.fixture
def host_servers():
    """Two HTTP servers on the host: one on 127.0.0.1, one on every address (0.0.0.0)."""
    servers = [http.server.ThreadingHTTPServer((addr, 0), http.server.SimpleHTTPRequestHandler)
               for addr in ("127.0.0.1", "0.0.0.0")]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield {"loopback": servers[0].server_address[1], "any": servers[1].server_address[1]}
    for server in servers:
        server.shutdown()
        server.server_close()


def host_addresses() -> list[str]:
    """This machine's own non-loopback IPv4 addresses (docker0 and every other interface)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not ipaddress.ip_address(address).is_loopback:
            found.append(address)
    return found


def docker0_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[3].split("/")[0]


def reachable_from_host(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def test_host_services_unreachable_from_agent(manifest, host_servers, backend, start):
    bridge_ip = docker0_address()
    targets = sorted({bridge_ip, *host_addresses()})
    # The probe can tell: an ordinary container on the default bridge does reach the 0.0.0.0 server.
    control = subprocess.run(["docker", "run", "--rm", "debian:bookworm-slim", "timeout", "3", "bash", "-c",
                              f"exec 3<>/dev/tcp/{bridge_ip}/{host_servers['any']}"], capture_output=True)
    assert control.returncode == 0, "control: a plain container should reach the host through docker0"
    for address in targets:
        assert reachable_from_host(address, host_servers["any"])

    with bottle_of(manifest, "probe", backend=backend, start=start) as bottle:
        plan = bottle.plan
        for address in targets:
            assert not tcp_probe(bottle, address, host_servers["any"]), f"reached host {address}"
            assert not tcp_probe(bottle, address, host_servers["loopback"]), f"reached host {address}"
        # "localhost" inside the agent is the agent's own loopback, not the host's.
        assert not tcp_probe(bottle, "127.0.0.1", host_servers["loopback"])
        assert not tcp_probe(bottle, "127.0.0.1", host_servers["any"])
        # docker: the engine's nominal gateway on the bottle network does not exist on the host. smol: the
        # host keeps that address (smolvm's gateway connects from the host), but the microVM may not reach it.
        gateway = str(ipaddress.ip_network(plan.network.subnet).network_address + 1)
        assert not tcp_probe(bottle, gateway, host_servers["any"])
        # Only the bundle answers; on every port of it but the proxy's, nothing does.
        assert tcp_probe(bottle, plan.network.bundle_ip, plan.proxy.port)
        if backend in ("smol", "k8s"):
            # smol: the microVM's way out is smolvm's egress filter (bundle-ip/32), not the routing table;
            # k8s: the pod keeps its route, and the packet filter its init container set is what holds.
            return

        routes = bottle.exec(["cat", "/proc/net/route"]).text().splitlines()[1:]
        destinations = [line.split()[1] for line in routes]
        assert "00000000" not in destinations, f"the agent has a default route: {routes}"
        assert len(routes) == 1, "only the bottle subnet is routed"
        # Only the bundle (and the agent itself) answer on the bottle network.
        assert tcp_probe(bottle, plan.network.bundle_ip, plan.proxy.port)


def test_only_the_contract_ports_answer_on_the_bundle(manifest, backend, start):
    # smolvm's egress filter opens every port of the bundle's address, so the bundle alone must close them.
    with bottle_of(manifest, "probe", backend=backend, start=start) as bottle:
        plan = bottle.plan
        ip = plan.network.bundle_ip
        # A service bound to loopback inside the bundle (as the egress stage is) ...
        bottle.exec_bundle(["sh", "-c", "nohup python3 -m http.server --bind 127.0.0.1 9999 >/dev/null 2>&1 &"])
        assert listening(bottle, "127.0.0.1:9999"), "control: the loopback service runs inside the bundle"
        # ... cannot be reached from the agent on any bundle address.
        assert not tcp_probe(bottle, ip, 9999)
        ports = " ".join(str(p) for p in [*range(1, 1025), 2375, 3128, 8000, 8081, 8443, 9090, 9418, 9999])
        scan = bottle.exec(["bash", "-c", f"for p in {ports} {plan.proxy.port} {plan.git_gate.port}; do "
                                          f"(exec 3<>/dev/tcp/{ip}/$p) 2>/dev/null && echo $p; done"])
        # Exactly the bundle's contract: the proxy, the git gate and (supervised by default) the supervisor.
        assert sorted(set(scan.stdout.split())) == sorted({str(p).encode() for p in contract.listening_ports(plan)})
        assert {plan.proxy.port, plan.git_gate.port, plan.supervise.port} == set(contract.listening_ports(plan))
        # The gate speaks git's smart HTTP and nothing else: no dumb-protocol files, no other paths.
        for path in ("/", "/origin.git/HEAD", "/origin.git/objects/info/packs", "/../etc/passwd"):
            answer = bottle.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ip}:{plan.git_gate.port}{path}"])
            assert answer.stdout in (b"403", b"404"), (path, answer.stdout)


def test_bundles_cannot_reach_each_other_on_the_shared_way_out(manifest):
    with bottle_of(manifest, "probe") as first, bottle_of(manifest, "probe") as second:
        outbound = first.plan.network.outbound
        assert outbound == second.plan.network.outbound
        address = first.client.api.inspect_container(second.bundle_id)["NetworkSettings"]["Networks"][outbound]["IPAddress"]
        # A service listening on every address of the second bundle ...
        second.exec_bundle(["sh", "-c", "nohup python3 -m http.server --bind 0.0.0.0 9999 >/dev/null 2>&1 &"])
        assert listening(second, "0.0.0.0:9999"), "control: it listens on every address"
        # ... is out of the first bundle's reach on the network they share, even for its egress stage.
        for user in ("egress", "bundle"):
            reach = first.exec_bundle(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{address}/9999"], user=user)
            assert reach.returncode != 0


def listening(bottle, address: str) -> bool:
    """Whether a TCP listener on ``address`` shows in the bundle within five seconds (iproute2's ss)."""
    check = bottle.exec_bundle(["bash", "-c", f"for i in $(seq 50); do ss -Hltn | grep -qF ' {address} ' && exit 0; "
                                              "sleep 0.1; done; exit 1"])
    return check.returncode == 0


#: A program of the manifest's author, named like the shell: it notes who ran it, then runs the real one.
SHELL_SHIM = "#!/bin/dash\n/usr/bin/id -u > /tmp/shim-ran-by-$(/usr/bin/id -u)\nexec /bin/dash \"$@\"\n"


def test_the_manifests_env_never_chooses_what_root_runs(tmp_path, start):
    # The author's PATH leads into a skill folder of theirs holding an `sh`: bottle's own steps as root (the CA,
    # the managed settings) must not run it; the agent's own commands do, as the manifest asks.
    manifest = write_manifest(tmp_path, {
        "bottles": {"dev": {"env": {"PATH": "/home/agent/.claude/skills/tools:/usr/local/bin:/usr/bin:/bin"}}},
        "agents": {"probe": {"bottle": "dev", "skills": ["tools"], "supervise": {"mode": "enforce"}}},
    }, skills={"tools": {"SKILL.md": "---\nname: tools\n---\n", "sh": SHELL_SHIM}})
    (tmp_path / "skills" / "tools" / "sh").chmod(0o755)
    with bottle_of(manifest, "probe", start=start) as bottle:
        ran = bottle.exec(["sh", "-c", "ls /tmp; printenv PATH"])
        assert ran.returncode == 0, ran.stderr
        listed = ran.stdout.decode().split()
        assert "shim-ran-by-1000" in listed, "the agent's own commands take the manifest's PATH"
        assert "shim-ran-by-0" not in listed, "a step as root ran the manifest's program"
        assert listed[-1].startswith("/home/agent/.claude/skills/tools:")
        # The root steps themselves ran: the CA is trusted and the managed settings are in place, root's.
        settings = bottle.exec(["stat", "-c", "%U", "/etc/claude-code/managed-settings.json"])
        assert settings.stdout.strip() == b"root", settings.stderr
