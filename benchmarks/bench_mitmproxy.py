"""What mitmproxy's relay costs by itself: a plain mitmdump, none of bottle's addons, against the straight path.

One container of the bundle image holds a local TLS origin, a `mitmdump` with no addon (streaming every
response, trusting the origin's certificate) and a Python client; the client measures, straight to the origin
and through mitmdump, the median HTTPS GET on a fresh connection and the best of three 100 MB downloads.
That is the floor under `bench_egress.py`'s figures: whatever bottle's policy and inspection cost comes on top.

With `--release DIR` the same runs once more with another mitmproxy release put in front of the image's on the
Python path (DIR made by `pip install --target DIR mitmproxy==10.4.2`, a release for the image's Python 3.11),
runs alternating, so the two releases are compared side by side under the same load.

    python benchmarks/bench_mitmproxy.py [--runs 3] [--release DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ORIGIN = r"""
import http.server, ssl, subprocess
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/tmp/origin.pem",
                "-out", "/tmp/origin.pem", "-days", "1", "-subj", "/CN=origin.bench"], check=True, capture_output=True)
PIECE = b"\0" * (1 << 20)
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go as separate writes: no delayed-ACK stalls
    def log_message(self, *args): pass
    def do_GET(self):
        pieces = 100 if self.path == "/big" else 0
        self.send_response(200)
        self.send_header("Content-Length", str(pieces << 20) if pieces else "2")
        self.end_headers()
        for _ in range(pieces):
            self.wfile.write(PIECE)
        if not pieces:
            self.wfile.write(b"ok")
server = http.server.ThreadingHTTPServer(("127.0.0.1", 8443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tmp/origin.pem")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""

CLIENT = r"""
import http.client, ssl, statistics, time
context = ssl._create_unverified_context()
def connection(proxied):
    if not proxied:
        return http.client.HTTPSConnection("127.0.0.1", 8443, context=context)
    conn = http.client.HTTPSConnection("127.0.0.1", 8080, context=context)
    conn.set_tunnel("origin.bench", 8443)
    return conn
def fresh(proxied, n=200):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn = connection(proxied)
        conn.request("GET", "/")
        conn.getresponse().read()
        times.append(time.perf_counter() - start)
        conn.close()
    return statistics.median(times) * 1000
def download(proxied):
    best = 0.0
    for _ in range(3):
        conn = connection(proxied)
        start = time.perf_counter()
        conn.request("GET", "/big")
        response, size = conn.getresponse(), 0
        while piece := response.read(1 << 20):
            size += len(piece)
        best = max(best, size / (time.perf_counter() - start) / 1e6)
        conn.close()
    return best
for proxied in (False, True):
    print("proxied" if proxied else "straight", round(fresh(proxied), 2), round(download(proxied)), flush=True)
"""

# Runs as root in the container: the origin, mitmdump once it listens, then the client.
SCRIPT = r"""
set -e
echo "127.0.0.1 origin.bench" >> /etc/hosts
python3 /bench/origin.py &
python3 -c "import mitmproxy.version as v; print('release', v.VERSION)"
python3 -c "import sys; from mitmproxy.tools.main import mitmdump; sys.exit(mitmdump())" \
    -q --ssl-insecure --set stream_large_bodies=1 --listen-host 127.0.0.1 -p 8080 &
for _ in $(seq 100); do
    python3 -c "import socket; [socket.create_connection(('127.0.0.1', p)).close() for p in (8080, 8443)]" \
        2>/dev/null && break
    sleep 0.1
done
python3 /bench/client.py
"""


def bundle_image(client) -> str:
    """The bundle image this checkout builds (``bottle image build`` first)."""
    from functools import partial

    from bottle_core.images import resolved_names
    from bottle_docker.image_build import base_image_id
    from bottle_docker.sidecar import base_image

    base = base_image()
    names = resolved_names(base, base, partial(base_image_id, client))
    client.images.get(names["bundle"])  # fails with the engine's own "No such image" when not built
    return names["bundle"]


def run_once(client, image: str, folder: Path, release: Path | None) -> dict[str, tuple[float, float]]:
    volumes = {str(folder): {"bind": "/bench", "mode": "ro"}}
    environment = {}
    if release:
        volumes[str(release)] = {"bind": "/release", "mode": "ro"}
        environment["PYTHONPATH"] = "/release"
    out = client.containers.run(image, ["sh", "/bench/run.sh"], entrypoint=[], user="0", network_mode="none",
                                volumes=volumes, environment=environment, remove=True, stderr=True).decode()
    figures = {"release": (out.split("release ", 1)[1].split()[0], 0.0)}
    for line in re.findall(r"^(straight|proxied) ([\d.]+) ([\d.]+)$", out, re.M):
        figures[line[0]] = (float(line[1]), float(line[2]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each release (alternating)")
    parser.add_argument("--release", type=Path, help="a folder holding another mitmproxy release to compare")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import docker

    client = docker.from_env()
    image = bundle_image(client)
    folder = Path(tempfile.mkdtemp(prefix="bottle-bench-mitmproxy-"))
    for name, text in (("origin.py", ORIGIN), ("client.py", CLIENT), ("run.sh", SCRIPT)):
        (folder / name).write_text(text)
    folder.chmod(0o755)
    print(f"a plain mitmdump in {image} (no network; origin, proxy and client in one container)")
    print("release   fresh GET straight / proxied / added    100 MB straight / proxied (share)")
    releases = [None, args.release.resolve()] if args.release else [None]
    for _ in range(args.runs):
        for release in releases:
            f = run_once(client, image, folder, release)
            (s_ms, s_mb), (p_ms, p_mb) = f["straight"], f["proxied"]
            print(f"{f['release'][0]:<9} {s_ms:6.2f} / {p_ms:6.2f} / +{p_ms - s_ms:5.2f} ms     "
                  f"{s_mb:5.0f} / {p_mb:4.0f} MB/s ({p_mb / s_mb:.0%})", flush=True)


if __name__ == "__main__":
    main()
