"""Egress figures: an HTTPS origin reached through a bottle's bundle, and straight, in one run on this machine.

Prints:
  - p50/p99 latency of an HTTPS GET of a small body, each on a fresh connection
    (TCP and TLS included: through the bundle that is the CONNECT, the proxy's
    TLS, the egress stage's check and its connection to the origin), through
    the bundle and straight, and the latency the bundle adds;
  - the same over one kept-alive connection;
  - a fresh connection's time split in three: TCP (through a proxy: the CONNECT answered), the
    TLS handshake, and the GET (through the bundle: the proxy's own connection to the origin);
  - throughput of a 100 MB download both ways, and the ratio;
  - the same from inside the bundle through the egress stage alone (squid), which
    splits the bundle's cost between its two stages;
  - the proxy's CPU time per fresh GET, per kept-alive GET and per download (less noisy than
    the wall-clock figures on a busy machine);
  - the bundle's memory (resident, per daemon) after the download, and its time to ready.

The download streams through the proxy's inspection (its first 2 MiB read for
prompt injection, since the origin names no type; once more as
application/octet-stream, which is not read, to show the relay alone); with
--secret the bottle declares a secret bound to the origin, so every piece is
scrubbed as well.

Everything is on this machine: the origin is a server container on a test
network made here (its address is private, so the bottle opts that subnet in
with egress.allow_private, as the integration tests do), with a throwaway CA.

    python benchmarks/bench_egress.py [-n 200] [--mb 100] [--secret]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ORIGIN = "origin.bench"

# Runs inside the server container: a TLS origin answering /small with "ok" and /bytes/N with N bytes (of no
# content type; /bytes/N?binary: application/octet-stream, which the proxy does not read for prompt injection).
SERVER = r"""
import http.server, re, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go as separate writes: no delayed-ACK stalls
    def log_message(self, *args): pass
    def do_GET(self):
        match = re.fullmatch(r"/bytes/(\d+)(\?binary)?", self.path)
        size = int(match.group(1)) if match else 2
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        if match and match.group(2):
            self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not match:
            self.wfile.write(b"ok")
            return
        chunk = b"\0" * (1 << 20)
        while size > 0:
            self.wfile.write(chunk[:size])
            size -= len(chunk)
server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("bench origin up", flush=True)
server.serve_forever()
"""

# Runs in the agent (through the bundle) or a plain container (straight): prints one JSON object.
CLIENT = r"""
import http.client, json, ssl, sys, time
mode, n, proxy, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile=cafile or None)
def connection():
    if proxy:
        host, port = proxy.rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
        conn.set_tunnel("origin.bench", 443)
        return conn
    return http.client.HTTPSConnection("origin.bench", 443, context=context, timeout=60)
def get(conn, path):
    conn.request("GET", path)
    response = conn.getresponse()
    size = 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
    assert response.status == 200, response.status
    return size
if mode == "fresh":
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn = connection()
        get(conn, "/small")
        times.append(time.perf_counter() - start)
        conn.close()
    print(json.dumps(times))
elif mode == "kept":
    conn = connection()
    get(conn, "/small")
    times = []
    for _ in range(n):
        start = time.perf_counter()
        get(conn, "/small")
        times.append(time.perf_counter() - start)
    print(json.dumps(times))
elif mode == "phases":
    # A fresh connection taken apart: TCP (and through the bundle the CONNECT answered), TLS, the GET.
    import socket
    rows = []
    for _ in range(n):
        start = time.perf_counter()
        host, port = (proxy.rsplit(":", 1)[0], int(proxy.rsplit(":", 1)[1])) if proxy else ("origin.bench", 443)
        raw = socket.create_connection((host, port), timeout=60)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if proxy:
            raw.sendall(b"CONNECT origin.bench:443 HTTP/1.1\r\nHost: origin.bench:443\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += raw.recv(4096)
            assert head.startswith(b"HTTP/1.1 200"), head
        opened = time.perf_counter()
        tls = context.wrap_socket(raw, server_hostname="origin.bench")
        shaken = time.perf_counter()
        tls.sendall(b"GET /small HTTP/1.1\r\nHost: origin.bench\r\n\r\n")
        reply = b""
        while not reply.endswith(b"\r\n\r\nok"):
            reply += tls.recv(4096)
        done = time.perf_counter()
        tls.close()
        rows.append([opened - start, shaken - opened, done - shaken])
    print(json.dumps(rows))
else:
    conn = connection()
    start = time.perf_counter()
    size = get(conn, f"/bytes/{n}" + ("?binary" if mode == "binary" else ""))
    print(json.dumps({"bytes": size, "seconds": time.perf_counter() - start}))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="GETs per latency measurement")
    parser.add_argument("--mb", type=int, default=100, help="size of the download, in MB (10^6 bytes)")
    parser.add_argument("--secret", action="store_true",
                        help="declare a secret bound to the origin, so every response is also scrubbed of it")
    args = parser.parse_args()

    import docker
    import docker.errors
    import trustme

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.servers.image import ensure_server_image

    client = docker.from_env()
    folder = Path(tempfile.mkdtemp(prefix="bottle-bench-egress-"))
    folder.chmod(0o755)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued = ca.issue_cert(ORIGIN)
    issued.private_key_and_cert_chain_pem.write_to_path(str(folder / "origin.pem"))
    for path in folder.iterdir():
        path.chmod(0o644)

    labels = {"bottle.test": "1", "bottle.test.pid": str(os.getpid())}
    network = client.networks.create(f"bottle-bench-egress-{secrets.token_hex(4)}", driver="bridge", internal=True,
                                     labels=labels)
    made = []
    try:
        server_image = ensure_server_image(client)[0]
        api = client.api

        def start(name: str, image: str, command: list[str], aliases=()) -> object:
            created = api.create_container(
                image, command, name=f"bottle-bench-{name}-{secrets.token_hex(3)}", labels=labels, user="0",
                host_config=api.create_host_config(network_mode=network.name, dns=["127.0.0.1"],
                                                   binds={str(folder): {"bind": "/bench", "mode": "ro"}}),
                networking_config=api.create_networking_config(
                    {network.name: api.create_endpoint_config(aliases=list(aliases))}),
                entrypoint=[],
            )
            container = client.containers.get(created["Id"])
            made.append(container)
            container.start()
            return container

        origin = start("origin", server_image, ["python3", "-c", SERVER, "/bench/origin.pem", "/bench/origin.pem"],
                       aliases=[ORIGIN])
        deadline = time.monotonic() + 30
        while b"bench origin up" not in origin.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        network.reload()
        subnet = network.attrs["IPAM"]["Config"][0]["Subnet"]

        os.environ.update({"BOTTLE_DOCKER_OUTBOUND_NETWORK": network.name,
                           "BOTTLE_UPSTREAM_CA_FILE": str(folder / "ca.pem")})
        manifest_path = folder / "bottle.json"
        bottle_table: dict = {"egress": {"allow": [ORIGIN], "allow_private": [subnet]}}
        if args.secret:
            os.environ["BENCH_SECRET"] = secrets.token_urlsafe(32)
            bottle_table["secrets"] = {"TOKEN": {"from_env": "BENCH_SECRET", "hosts": [ORIGIN]}}
        manifest_path.write_text(json.dumps({"bottles": {"bench": bottle_table},
                                             "agents": {"bench": {"bottle": "bench"}}}))
        from bottle_core import session
        from bottle_core.bundle import contract
        from bottle_core.manifest import Manifest
        from bottle_core.plugins import Plugins
        from bottle_core.spec import BottleSpec

        plugins = Plugins()
        plugins.load_core()
        plugins.load_backend("docker")
        spec = BottleSpec(manifest=Manifest.load(manifest_path), agent="bench", copy_cwd=False, cwd=folder)
        plan = session.prepare(plugins, spec)
        agent_image = plan.images.get("agent") or "bottle-agent"

        straight = start("client", server_image, ["sleep", "600"])

        def run_straight(*argv: str) -> object:
            code, out = straight.exec_run(["python3", "-c", CLIENT, *argv, "", "/bench/ca.pem"])
            assert code == 0, out.decode()
            return json.loads(out)

        launched = time.perf_counter()
        with session.running(plugins, plan) as bottle:
            ready = time.perf_counter() - launched
            proxy = f"{plan.network.bundle_ip}:{plan.proxy.port}"

            def proxy_cpu() -> float:
                """CPU seconds (user + system) the bundle's proxy has used so far: less noisy than wall time."""
                stat = bottle.exec_bundle(["sh", "-c", "for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" "
                                           "= mitmdump ] && cat $d/stat; done"], user="nobody").stdout.decode()
                fields = stat.rsplit(")", 1)[-1].split()  # after the command name: state, ppid, ...
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

            cpu: dict[str, list[float]] = {}

            def run_bundle(*argv: str) -> object:
                before = proxy_cpu()
                result = bottle.exec(["python3", "-c", CLIENT, *argv, proxy, ""])
                assert result.returncode == 0, result.stderr.decode()
                cpu.setdefault(argv[0], []).append(proxy_cpu() - before)
                return json.loads(result.stdout)

            def run_egress_stage(*argv: str) -> object:
                """From inside the bundle, through the egress stage alone (what stage 2 costs by itself)."""
                result = bottle.exec_bundle(["python3", "-c", CLIENT, *argv, f"127.0.0.1:{plan.egress.port}",
                                             contract.UPSTREAM_CA], user="bundle")
                assert result.returncode == 0, result.stderr.decode()
                return json.loads(result.stdout)

            ways = {"straight": run_straight, "egress stage": run_egress_stage, "bundle": run_bundle}
            size = args.mb * 1_000_000
            for run in ways.values():
                run("fresh", "5")  # warm every path (names, certificates)
            cpu.clear()
            figures = {mode: {way: run(mode, str(args.n)) for way, run in ways.items()} for mode in ("fresh", "kept")}
            phases = {way: run("phases", str(args.n)) for way, run in ways.items()}
            # The best of three downloads each way: one 100 MB transfer takes a fraction of a second.
            download = {way: min((run("bytes", str(size)) for _ in range(3)), key=lambda d: d["seconds"])
                        for way, run in ways.items()}
            binary = min((run_bundle("binary", str(size)) for _ in range(3)), key=lambda d: d["seconds"])
            memory = bottle.exec_bundle(["bash", "-c", "for d in /proc/[0-9]*; do n=$(cat $d/comm 2>/dev/null) || "
                                         "continue; echo $n $(awk '/^VmRSS:/{print $2} /^VmHWM:/{print $2}' "
                                         "$d/status); done"], user="nobody").stdout.decode()
            stats = bottle.client.api.stats(bottle.bundle_id, stream=False)["memory_stats"]
    finally:
        for container in made:
            container.remove(force=True)
        for attempt in range(40):  # the bottle's bundle may still be leaving the network
            try:
                network.remove()
                break
            except docker.errors.APIError:
                if attempt == 39:
                    raise
                time.sleep(0.25)

    print(f"egress through the bundle vs straight to the origin ({args.n} GETs each; agent image {agent_image}"
          f"{'; a secret declared: responses scrubbed' if args.secret else ''})")
    print(f"{'':34}{'p50':>11}{'p99':>11}")
    for mode, title in (("fresh", "GET, fresh connection"), ("kept", "GET, kept-alive connection")):
        rows = figures[mode]
        print(f"  {title}")
        for way in ways:
            times = rows[way]
            print(f"    {way:30}{percentile(times, 50) * 1e3:9.2f}ms{percentile(times, 99) * 1e3:9.2f}ms")
        added = [percentile(rows["bundle"], q) - percentile(rows["straight"], q) for q in (50, 99)]
        print(f"    {'added by the bundle':30}{added[0] * 1e3:9.2f}ms{added[1] * 1e3:9.2f}ms"
              f"   (target: added p50 < 5 ms)")
    print("  a fresh connection's phases, p50 (through a proxy: TCP + the CONNECT answered; the TLS handshake; "
          "the GET, which through the bundle opens the connection to the origin)")
    print(f"    {'':30}{'connect':>11}{'TLS':>11}{'GET':>11}")
    for way in ways:
        print(f"    {way:30}" + "".join(f"{percentile([row[i] for row in phases[way]], 50) * 1e3:9.2f}ms"
                                         for i in range(3)))
    print("  the proxy's CPU time (user + system; less sensitive to the machine's load than the times above)")
    print(f"    per GET on a fresh connection {sum(cpu['fresh']) / args.n * 1e3:7.2f} ms; on a kept-alive one "
          f"{sum(cpu['kept']) / args.n * 1e3:7.2f} ms; per {args.mb} MB downloaded {sum(cpu['bytes']) / 3:7.2f} s, "
          f"{sum(cpu['binary']) / 3:7.2f} s as application/octet-stream")
    rates = {way: d["bytes"] / d["seconds"] / 1e6 for way, d in download.items()}
    print(f"  {args.mb} MB download (best of 3)")
    for way in ways:
        assert download[way]["bytes"] == size, download[way]
        print(f"    {way:14} {download[way]['seconds']:7.2f}s  {rates[way]:8.1f} MB/s")
    print(f"  throughput through the bundle: {rates['bundle'] / rates['straight'] * 100:.0f}% of straight"
          "   (target: >= 50%)")
    assert binary["bytes"] == size, binary
    binary_rate = binary["bytes"] / binary["seconds"] / 1e6
    print(f"  the same as application/octet-stream (not read for prompt injection), through the bundle: "
          f"{binary_rate:.1f} MB/s, {binary_rate / rates['straight'] * 100:.0f}% of straight")
    print(f"  bundle ready (launch to handle): {ready:.2f}s")
    print("  bundle memory after the download (resident now / peak, MiB):")
    for line in memory.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("mitmdump", "squid", "python3"):
            print(f"    {parts[0]:10} {int(parts[1]) / 1024:7.1f} / {int(parts[2]) / 1024:7.1f}")
    usage, peak = stats.get("usage", 0), stats.get("max_usage", 0)
    print(f"    container  {usage / 2**20:7.1f} / {peak / 2**20:7.1f} (limit {stats.get('limit', 0) / 2**20:.0f})")


if __name__ == "__main__":
    main()
