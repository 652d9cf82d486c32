"""`bottle exec AGENT -- true` from a warm pool, cold, and `docker run --rm` of the base image, side by side.

Each measurement is the whole command as a user runs it (CLI start, plan,
launch or claim, provisioning, the command, teardown). Runs interleave the
three kinds, so a busy moment of the machine weighs on all of them alike;
before each pooled run the pool's keeper has refilled (not timed).

    python benchmarks/bench_pool.py [-n 7]
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


def pool_ready(manifest: Path) -> int:
    rows = json.loads(subprocess.run([BOTTLE, "pool", "ls", "--json"], capture_output=True, check=True).stdout)
    return sum(row["ready"] for row in rows if row["agent"] == "demo" and row["manifest"] == str(manifest))


def wait_for_refill(manifest: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while pool_ready(manifest) < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the pool did not refill within the timeout")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of each measurement")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bottle-bench-pool-"))
    manifest = folder / "bottle.json"
    manifest.write_text(json.dumps(SEED))
    os.environ.pop("ANTHROPIC_API_KEY", None)
    subprocess.run([BOTTLE, "image", "build"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["docker", "run", "--rm", BASE, "true"], check=True)  # warm the engine's caches, untimed
    subprocess.run([BOTTLE, "pool", "fill", "-m", str(manifest), "demo"], check=True, cwd=folder)
    pooled, cold, plain = [], [], []
    try:
        for _ in range(args.n):
            wait_for_refill(manifest)
            pooled.append(timed([BOTTLE, "exec", "-m", str(manifest), "demo", "--", "true"], folder))
            wait_for_refill(manifest)  # the refill's launch must not weigh on the cold run
            cold.append(timed([BOTTLE, "exec", "-m", str(manifest), "cold", "--", "true"], folder))
            plain.append(timed(["docker", "run", "--rm", BASE, "true"], folder))
    finally:
        subprocess.run([BOTTLE, "pool", "drain", "-m", str(manifest)], check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)

    base = statistics.median(plain)
    print(f"{args.n} runs each, medians (min-max)")
    for name, times in (("bottle exec AGENT -- true, warm pool", pooled), ("bottle exec AGENT -- true, cold", cold),
                        (f"docker run --rm {BASE} true", plain)):
        median = statistics.median(times)
        print(f"{name:44s} {median:6.2f} s  ({min(times):.2f}-{max(times):.2f})  {median / base:4.1f}x docker run")


if __name__ == "__main__":
    main()
