"""Launch figures for the docker backend, in one run on this machine.

Prints the median of N runs of:
  - launch start -> first exec returning (the `launch` context, no provisioning),
  - the whole `bottle exec AGENT -- true` (CLI start, plan, launch, provision, teardown),
  - `docker run --rm <base> true`, for scale,
with the ratios, and the bundle's idle memory.

    python benchmarks/bench_launch.py [-n 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bottle_core import session
from bottle_core.manifest import Manifest
from bottle_core.plugins import Plugins
from bottle_core.spec import BottleSpec

SEED = {"bottles": {"dev": {}}, "agents": {"demo": {"skills": [], "prompt": "You are demo. Be brief.", "bottle": "dev"}}}
BOTTLE = str(Path(sys.executable).with_name("bottle"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_mib(text: str) -> float:
    value = text.strip().split("/")[0].strip()
    for unit, factor in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024 / 1024)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of each measurement")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bottle-bench-"))
    manifest_path = folder / "bottle.json"
    manifest_path.write_text(json.dumps(SEED))
    manifest = Manifest.load(manifest_path)
    spec = BottleSpec(manifest=manifest, agent="demo", copy_cwd=False, cwd=folder)
    plugins = Plugins()
    plugins.load_core()
    plugins.load_backend("docker")
    from bottle_docker import engine
    from bottle_docker.image_build import ensure_planned

    plan0 = session.prepare(plugins, spec)
    images = plan0.images
    ensure_planned(engine.client(), images)  # build outside the timings
    shutil.rmtree(plan0.state_dir)
    base = plan0.images["base"]

    launch_times, memory = [], []
    for _ in range(args.n):
        plan = session.prepare(plugins, spec)
        start = time.perf_counter()
        with plugins.call_first("launch", plan=plan) as bottle:
            bottle.exec(["true"])
            launch_times.append(time.perf_counter() - start)
            bottle.ready()
            time.sleep(2.0)  # let the proxy settle before reading its idle memory
            stats = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", bottle.bundle_id],
                                   capture_output=True, text=True, check=True).stdout
            memory.append(parse_mib(stats))
        shutil.rmtree(plan.state_dir)

    exec_times = []
    for _ in range(args.n):
        exec_times.append(timed(lambda: subprocess.run([BOTTLE, "exec", "-m", str(manifest_path), "demo", "--", "true"],
                                                       check=True, stdin=subprocess.DEVNULL)))
    docker_times = [timed(lambda: subprocess.run(["docker", "run", "--rm", base, "true"], check=True))
                    for _ in range(args.n)]

    launch, whole, plain = (statistics.median(x) for x in (launch_times, exec_times, docker_times))
    print(f"images: agent {images['agent']}, bundle {images['bundle']}; {args.n} runs each")
    print(f"launch -> first exec          median {launch:6.3f} s   (target < 1.5 s)   {launch / plain:4.1f}x docker run")
    print(f"bottle exec AGENT -- true     median {whole:6.3f} s   (target < 2.5 s)   {whole / plain:4.1f}x docker run")
    print(f"docker run --rm {base} true   median {plain:6.3f} s")
    print(f"bundle idle memory            median {statistics.median(memory):6.1f} MiB (target < 150 MiB)")


if __name__ == "__main__":
    main()
