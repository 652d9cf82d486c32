"""`bottle exec AGENT -- true` from a warm pool, cold, and `docker run --rm` of the base image, side by side.

Each measurement is the whole command as a user runs it (CLI start, plan,
launch or claim, provisioning, the command, teardown). Runs interleave the
kinds, so a busy moment of the machine weighs on all of them alike; before
each pooled run the pool's keeper has refilled (not timed). With
``--baseline PATH`` (another checkout's ``bottle`` executable) its pooled and
cold runs are measured too, interleaved with this checkout's, each
installation with a pool of its own (its own manifest file). With
``--compiled`` the commands may cache their bytecode (``PYTHONDONTWRITEBYTECODE``
taken out of their environment), as an installed bottle has it: where that
variable is set, every start compiles bottle's and its libraries' modules
from source again (~0.3 s on a busy 2-core machine).

    python benchmarks/bench_pool.py [-n 7] [--compiled] [--baseline OTHER/.venv/bin/bottle]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = {"bottles": {"dev": {}}, "agents": {"demo": {"skills": [], "prompt": "You are demo. Be brief.", "bottle": "dev"},
                                          "cold": {"skills": [], "prompt": "You are demo. Be brief.", "bottle": "dev"}}}
BOTTLE = str(Path(sys.executable).with_name("bottle"))
BASE = "debian:bookworm-slim"


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def pool_ready(bottle: str, manifest: Path) -> int:
    rows = json.loads(subprocess.run([bottle, "pool", "ls", "--json"], capture_output=True, check=True).stdout)
    return sum(row["ready"] for row in rows if row["agent"] == "demo" and row["manifest"] == str(manifest))


def wait_for_refill(bottle: str, manifest: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while pool_ready(bottle, manifest) < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the pool did not refill within the timeout")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of each measurement")
    parser.add_argument("--baseline", help="another bottle executable to measure alongside, interleaved")
    parser.add_argument("--compiled", action="store_true",
                        help="let the commands cache their bytecode (PYTHONDONTWRITEBYTECODE unset)")
    args = parser.parse_args()
    if args.compiled:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the untimed image build and fill write it first

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bottle-bench-pool-"))
    bottles = {"this checkout": BOTTLE, **({"baseline": args.baseline} if args.baseline else {})}
    manifests = {}
    for index, label in enumerate(bottles):
        manifests[label] = folder / f"bottle-{index}.json"
        manifests[label].write_text(json.dumps(SEED))
    os.environ.pop("ANTHROPIC_API_KEY", None)
    for label, bottle in bottles.items():
        subprocess.run([bottle, "image", "build"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["docker", "run", "--rm", BASE, "true"], check=True)  # warm the engine's caches, untimed
    pooled: dict[str, list[float]] = {label: [] for label in bottles}
    cold: dict[str, list[float]] = {label: [] for label in bottles}
    plain: list[float] = []
    try:
        for label, bottle in bottles.items():
            subprocess.run([bottle, "pool", "fill", "-m", str(manifests[label]), "demo"], check=True, cwd=folder)
        for _ in range(args.n):
            for label, bottle in bottles.items():
                for other, other_bottle in bottles.items():  # no refill under way while timing
                    wait_for_refill(other_bottle, manifests[other])
                pooled[label].append(timed([bottle, "exec", "-m", str(manifests[label]), "demo", "--", "true"], folder))
            for label, bottle in bottles.items():
                for other, other_bottle in bottles.items():
                    wait_for_refill(other_bottle, manifests[other])
                cold[label].append(timed([bottle, "exec", "-m", str(manifests[label]), "cold", "--", "true"], folder))
            plain.append(timed(["docker", "run", "--rm", BASE, "true"], folder))
    finally:
        for label, bottle in bottles.items():
            subprocess.run([bottle, "pool", "drain", "-m", str(manifests[label])], check=False,
                           stdout=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)

    base = statistics.median(plain)
    print(f"{args.n} runs each, medians (min-max); load average at the start {load_before:.1f}, "
          f"at the end {os.getloadavg()[0]:.1f}; bytecode {'cached' if args.compiled else 'as the environment says'}")
    rows = [(f"docker run --rm {BASE} true", plain)]
    for label in bottles:
        rows += [(f"{label}: bottle exec, warm pool", pooled[label]), (f"{label}: bottle exec, cold", cold[label])]
    for name, times in rows:
        median = statistics.median(times)
        print(f"{name:48s} {median:6.2f} s  ({min(times):.2f}-{max(times):.2f})  {median / base:4.1f}x docker run")


if __name__ == "__main__":
    main()
