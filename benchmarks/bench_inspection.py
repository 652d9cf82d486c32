"""Content inspection figures, in one run on this machine.

Prints:
  - the cost of inspecting a small request (a few headers, a short JSON body),
  - the cost of inspecting a 1 MB request body (three kinds: base64 image in JSON, JSON of ids and hashes, prose),
  - the cost of scrubbing and reading a 1 MB response for injection, and of reading 1 MB of Python source as code,
  - detection rates on the labelled corpus (tests/corpus.py): attacks stopped, benign refused,
  - with --docs DIR..., injection and request false positives on the HTML/Markdown pages found there,
  - with --code DIR..., request false positives on the Python files of 1 KiB or more found there, each sent as a
    request body (source code an agent uploads: a gist, a paste, a review),
  - with --e2e, the p50 of a small HTTPS GET from inside a real bottle through the bundle (scanning on), against
    a test origin on an internal network, and the in-process inspection cost of that request.

    python benchmarks/bench_inspection.py [--docs /usr/share/doc] [--code /usr/lib/python3/dist-packages] [--e2e]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bottle_core.bundle.image import inspection, response_inspection  # noqa: E402

from tests import corpus  # noqa: E402

MB = 1024 * 1024


def best_of(fn, runs: int = 5) -> float:
    """Median wall time of ``runs`` calls, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bodies(rng: random.Random) -> dict[str, bytes]:
    image = json.dumps({"name": "photo.png", "data": base64.b64encode(rng.randbytes(int(MB * 0.74))).decode()}).encode()
    rows, ids = [], 0
    while sum(len(r) for r in rows) < MB:
        ids += 1
        rows.append(json.dumps({"id": ids, "uuid": str(__import__("uuid").UUID(bytes=rng.randbytes(16))),
                                "sha": rng.randbytes(32).hex(), "name": f"item {ids}"}))
    records = ("[" + ",".join(rows) + "]").encode()[:MB]
    prose = (corpus.PROSE + corpus.DOC_ABOUT_KEYS) * (MB // len(corpus.PROSE + corpus.DOC_ABOUT_KEYS) + 1)
    return {"base64 image in JSON": image[:MB], "JSON of ids and hashes": records, "prose and docs": prose.encode()[:MB]}


def python_source() -> bytes:
    """About 1 MB of real Python: Debian's installed pip modules joined (b"" when there are none)."""
    files = sorted(Path("/usr/lib/python3/dist-packages/pip/_internal").rglob("*.py"))
    out = b""
    for path in files:
        if len(out) >= MB:
            break
        out += path.read_bytes() + b"\n"
    return out[:out.rfind(b"\ndef ", 0, MB)] if len(out) > MB else out  # cut at a top-level definition


def rates() -> None:
    table = corpus.secrets_table(random.Random(1))
    inspector = inspection.Inspector(table, corpus.ALLOW, model_host="api.anthropic.test")
    for seed in (1, 2, 3):
        cases = corpus.requests(seed)
        attacks = [c for c in cases if c.attack]
        benign = [c for c in cases if not c.attack]
        inspector = inspection.Inspector(corpus.secrets_table(random.Random(seed)), corpus.ALLOW, "api.anthropic.test")

        def refused(case):
            headers = case.headers + ([("content-type", case.content_type)] if case.content_type else [])
            return inspector.inspect(case.host, 443, case.path, headers, case.body, case.content_type) is not None

        stopped = sum(refused(c) for c in attacks)
        wrongly = sum(refused(c) for c in benign)
        replies = corpus.responses(seed)
        bad = [c for c in replies if c.attack]
        good = [c for c in replies if not c.attack]
        caught = sum(response_inspection.find_injection(c.body, c.content_type).injection for c in bad)
        flagged = sum(response_inspection.find_injection(c.body, c.content_type).injection for c in good)
        print(f"corpus seed {seed}: requests: {stopped}/{len(attacks)} attacks stopped ({100 * stopped / len(attacks):.1f}%), "
              f"{wrongly}/{len(benign)} benign refused ({100 * wrongly / len(benign):.1f}%); responses: "
              f"{caught}/{len(bad)} injections caught ({100 * caught / len(bad):.1f}%), {flagged}/{len(good)} benign flagged")


def docs(folders: list[str]) -> None:
    pages = [p for folder in folders for p in sorted(Path(folder).rglob("*"))
             if p.is_file() and p.suffix in (".html", ".htm", ".md", ".txt") and p.stat().st_size < 4 * MB]
    inspector = inspection.Inspector(corpus.secrets_table(random.Random(1)), corpus.ALLOW)
    flagged, refused, size, start = [], [], 0, time.perf_counter()
    for page in pages:
        body = page.read_bytes()
        size += len(body)
        kind = "text/html" if page.suffix.startswith(".htm") else "text/markdown"
        if response_inspection.find_injection(body, kind).injection:
            flagged.append(page)
        if inspector.inspect("allowed.test", 443, "/upload", [("content-type", kind)], body, kind):
            refused.append(page)
    took = time.perf_counter() - start
    print(f"documentation pages: {len(pages)} ({size / MB:.1f} MB) in {took:.0f} s ({took / max(size / MB, 1e-9):.2f} s per "
          f"MB, both sides): "
          f"{len(flagged)} read as injection ({100 * len(flagged) / max(len(pages), 1):.2f}%), "
          f"{len(refused)} refused as request bodies ({100 * len(refused) / max(len(pages), 1):.2f}%)")
    for page in (flagged + refused)[:10]:
        print(f"  {page}")


def code(folders: list[str]) -> None:
    files = [p for folder in folders for p in sorted(Path(folder).rglob("*.py"))
             if p.is_file() and not p.is_symlink() and 1024 <= p.stat().st_size < 4 * MB]
    inspector = inspection.Inspector(corpus.secrets_table(random.Random(1)), corpus.ALLOW)
    refused, size, start = [], 0, time.perf_counter()
    for path in files:
        body = path.read_bytes()
        size += len(body)
        finding = inspector.inspect("allowed.test", 443, "/upload", [("content-type", "text/plain")], body,
                                    "text/plain")
        if finding:
            refused.append((path, finding.reason()))
    took = time.perf_counter() - start
    print(f"Python files as request bodies: {len(files)} ({size / MB:.1f} MB) in {took:.0f} s: {len(refused)} refused "
          f"({100 * len(refused) / max(len(files), 1):.2f}%)")
    for path, reason in refused[:20]:
        print(f"  {path}: {reason}")


def e2e(runs: int) -> None:
    import secrets as pysecrets

    import docker

    from bottle_core import session
    from bottle_core.manifest import Manifest
    from bottle_core.plugins import Plugins
    from bottle_core.spec import BottleSpec
    from tests.integration.conftest import CertAuthority, Internet, resource_labels, wait_until_listening
    from tests.servers.image import ensure_server_image

    client = docker.from_env()
    folder = Path(__import__("tempfile").mkdtemp(prefix="bottle-bench-"))
    folder.chmod(0o755)
    ca = CertAuthority(folder)
    cert, key = ca.issue("allowed.test")
    network = client.networks.create(f"bottle-bench-{pysecrets.token_hex(4)}", driver="bridge", internal=True,
                                      labels=resource_labels())
    internet = Internet(client, network, ensure_server_image(client)[0])
    origin = internet.start(f"bottle-bench-origin-{pysecrets.token_hex(4)}",
                            ["python3", "/opt/bottle-test/origin.py", "--cert", f"/srv/{cert.name}", "--key",
                             f"/srv/{key.name}", "--port", "443"],
                            aliases=["allowed.test"], binds={str(folder): {"bind": "/srv", "mode": "ro"}})
    try:
        wait_until_listening(origin, "origin listening on https")
        os.environ.update({"BOTTLE_DOCKER_OUTBOUND_NETWORK": network.name, "BOTTLE_UPSTREAM_CA_FILE": str(ca.pem_path)})
        path = folder / "bottle.json"
        path.write_text(json.dumps({"bottles": {"b": {"egress": {"allow": ["allowed.test:443"]}}},
                                    "agents": {"a": {"bottle": "b"}}}))
        plugins = Plugins()
        plugins.load_core()
        plugins.load_backend("docker")
        spec = BottleSpec(manifest=Manifest.load(path), agent="a", copy_cwd=False, cwd=folder)
        plan = session.prepare(plugins, spec)
        with session.running(plugins, plan) as bottle:
            script = (f"for i in $(seq {runs}); do curl -s -o /dev/null -w '%{{time_total}}\\n' "
                      "https://allowed.test/; done")
            times = [float(line) * 1000 for line in bottle.exec(["sh", "-c", script]).stdout.decode().split()]
        inspector = inspection.Inspector([], ["allowed.test:443"])
        headers = [("host", "allowed.test"), ("user-agent", "curl/7.88.1"), ("accept", "*/*")]
        cost = best_of(lambda: inspector.inspect("allowed.test", 443, "/", headers, b""), 200)
        reply = b"hello from allowed.test\n"
        cost += best_of(lambda: (response_inspection.Scrubber([]).scrub(reply),
                                 response_inspection.find_injection(reply, "text/plain")), 200)
        print(f"small HTTPS GET through the bundle, scanning on: p50 {statistics.median(times):.1f} ms, "
              f"p90 {sorted(times)[int(len(times) * 0.9)]:.1f} ms over {len(times)} requests "
              f"(a new TLS connection each); inspection's own share: {cost:.3f} ms")
    finally:
        origin.remove(force=True)
        network.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", nargs="*", default=[], help="folders of documentation pages to check for false positives")
    parser.add_argument("--code", nargs="*", default=[], help="folders of Python files to send as request bodies")
    parser.add_argument("--e2e", action="store_true", help="also time a small HTTPS GET through a real bottle")
    parser.add_argument("-n", type=int, default=50, help="requests for --e2e")
    args = parser.parse_args()

    rng = random.Random(1)
    table = corpus.secrets_table(rng)
    inspector = inspection.Inspector(table, corpus.ALLOW, model_host="api.anthropic.test")
    for name, body in bodies(rng).items():
        ms = best_of(lambda: inspector.inspect("allowed.test", 443, "/upload", [("content-type", "application/json")],
                                               body, "application/json"))
        print(f"inspect a 1 MB request body ({name}): {ms:.0f} ms")
    small = json.dumps({"model": "x", "query": "how to rotate an API key", "page": 2,
                        "session": "4f1c2a9e-77b0-4c1d-9d6e-2b8f0c3a5e71"}).encode()
    headers = [("content-type", "application/json"), ("user-agent", "curl/7.88.1"), ("accept", "*/*"),
               ("authorization", "Bearer " + table[1]["placeholder"])]
    ms = best_of(lambda: inspector.inspect("allowed.test", 443, "/v1/search?q=keys&lang=en", headers, small,
                                           "application/json"), 500)
    print(f"inspect a small request (4 headers, {len(small)}-byte JSON body): {ms:.3f} ms")
    page = (corpus._page("Guide", "".join(corpus.BENIGN_PAGES)) * 400).encode()[:MB]
    scrubber = response_inspection.Scrubber(table)
    print(f"scrub a 1 MB response: {best_of(lambda: scrubber.scrub(page)):.0f} ms; "
          f"read it for injection: {best_of(lambda: response_inspection.find_injection(page, 'text/html')):.0f} ms")
    source = python_source()
    if source:
        print(f"read 1 MB of Python source for injection, as code (text/x-python): "
              f"{best_of(lambda: response_inspection.find_injection(source, 'text/x-python', '/m.py'), 3):.0f} ms; "
              f"as an untyped text/plain body (parsed to tell): "
              f"{best_of(lambda: response_inspection.find_injection(source, 'text/plain', '/m'), 3):.0f} ms")
    print(f"BIP-39 word list: {'present' if inspection.BIP39 else 'missing (heuristic in use)'}")
    rates()
    if args.docs:
        docs(args.docs)
    if args.code:
        code(args.code)
    if args.e2e:
        e2e(args.n)


if __name__ == "__main__":
    main()
