"""Launch to first exec: k8s (the test cluster) against docker on this machine, one bottle and eight at once.

Each figure is the wall time from ``prepare`` to the first ``id -u`` answered
in the agent (``session.running``: images ensured, bundle and agent up,
provisioned, the bundle ready), teardown not included (printed apart). Needs
the images built (``bottle image build``) and, for k8s, the test cluster's
``KUBECONFIG`` and ``CONTAINERD_ADDRESS`` in the environment (``make cluster``
prints them).

    python benchmarks/bench_k8s.py [--runs 3] [--concurrent 8] [--backends docker,k8s]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(backend: str, manifest: Path) -> tuple[float, float]:
    """Seconds to the first exec, and seconds of the teardown."""
    from tests.integration.bottles import bottle_of

    start = time.monotonic()
    context = bottle_of(manifest, "bench", backend=backend)
    bottle = context.__enter__()
    try:
        assert bottle.exec(["id", "-u"]).text().strip() == "1000"
        first = time.monotonic() - start
    finally:
        down = time.monotonic()
        context.__exit__(None, None, None)
    return first, time.monotonic() - down


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--backends", default="docker,k8s", help="comma-separated, in order")
    args = parser.parse_args()
    if os.environ.get("CONTAINERD_ADDRESS"):
        os.environ.setdefault("BOTTLE_K8S_CONTAINERD_ADDRESS", os.environ["CONTAINERD_ADDRESS"])
    folder = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    manifest = folder / "bottle.json"
    manifest.write_text('{"bottles": {"dev": {}}, "agents": {"bench": {"bottle": "dev"}}}')
    for backend in args.backends.split(","):
        one(backend, manifest)  # warm: images built and (k8s) imported into the node
        runs = [one(backend, manifest) for _ in range(args.runs)]
        firsts = [r[0] for r in runs]
        print(f"{backend}: launch to first exec, median of {args.runs}: {statistics.median(firsts):.1f} s "
              f"(min {min(firsts):.1f}, max {max(firsts):.1f}); teardown median "
              f"{statistics.median(r[1] for r in runs):.1f} s", flush=True)
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.concurrent) as pool:
            together = list(pool.map(lambda _: one(backend, manifest), range(args.concurrent)))
        wall = time.monotonic() - start
        print(f"{backend}: {args.concurrent} at once: all up and down in {wall:.1f} s; launch to first exec "
              f"median {statistics.median(t[0] for t in together):.1f} s, slowest {max(t[0] for t in together):.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
