"""Launch figures for the docker backend, in one run on this machine.

Prints the median of N runs of:
  - launch start -> first exec returning (the `launch` context, no provisioning),
  - the whole `bottle exec AGENT -- true` (CLI start, plan, launch, provision, teardown), cold,
  - `docker run --rm <base> true`, for scale,
  - 8 `bottle exec AGENT -- true` at once from 8 processes (wall time for all, against one cold exec),
with the ratios, and the bundle's idle memory and the CPU time it spent from its start to idle (its
cgroup's ``cpu.stat``: every process of the bundle, those ended included). With ``--baseline PATH`` (another
checkout's ``bottle`` executable) the exec figures are measured for it too,
interleaved with this checkout's, and printed side by side; one untimed exec of each comes first (images
another checkout's build pruned are built again there, not in a timed run).

    python benchmarks/bench_launch.py [-n 7] [--concurrent 8] [--baseline OTHER/.venv/bin/bottle]
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


def bundle_cpu(container: str) -> float:
    """CPU seconds the container's processes have used so far (its cgroup's, v2 then v1), NaN when unreadable."""
    for path, key, scale in (("/sys/fs/cgroup/cpu.stat", "usage_usec", 1e-6),
                             ("/sys/fs/cgroup/cpuacct/cpuacct.usage", None, 1e-9)):
        out = subprocess.run(["docker", "exec", container, "cat", path], capture_output=True, text=True)
        if out.returncode == 0:
            if key is None:
                return int(out.stdout) * scale
            return next(int(line.split()[1]) * scale for line in out.stdout.splitlines() if line.startswith(key))
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of each measurement")
    parser.add_argument("--concurrent", type=int, default=8, help="bottles started at once (default 8)")
    parser.add_argument("--baseline", help="another bottle executable to measure alongside, interleaved")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
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

    launch_times, memory, cpu = [], [], []
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
            cpu.append(bundle_cpu(bottle.bundle_id))
        shutil.rmtree(plan.state_dir)

    bottles = {"this checkout": BOTTLE, **({"baseline": args.baseline} if args.baseline else {})}
    command = ["exec", "-m", str(manifest_path), "demo", "--", "true"]
    exec_times: dict[str, list[float]] = {label: [] for label in bottles}
    docker_times: list[float] = []
    for bottle in bottles.values():  # untimed: each installation builds its images now if they are missing
        subprocess.run([bottle, *command], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    for _ in range(args.n):  # interleaved, so a busy moment hurts each alike
        for label, bottle in bottles.items():
            exec_times[label].append(timed(lambda: subprocess.run([bottle, *command], check=True,
                                                                  stdin=subprocess.DEVNULL)))
        docker_times.append(timed(lambda: subprocess.run(["docker", "run", "--rm", base, "true"], check=True)))
    together: dict[str, list[float]] = {label: [] for label in bottles}
    for round_ in range(2):  # twice, the order swapped, so neither always meets the other's leftovers
        for label, bottle in (list(bottles.items()) if round_ % 2 == 0 else list(reversed(bottles.items()))):
            def at_once() -> None:
                procs = [subprocess.Popen([bottle, *command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE) for _ in range(args.concurrent)]
                failed = [p.stderr.read().decode()[-300:] for p in procs if p.wait() != 0]
                if failed:
                    sys.exit(f"{len(failed)} of {args.concurrent} concurrent bottles failed ({label}): {failed[0]}")
            together[label].append(timed(at_once))

    launch, plain = statistics.median(launch_times), statistics.median(docker_times)
    print(f"images: agent {images['agent']}, bundle {images['bundle']}; {args.n} runs each; "
          f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"launch -> first exec          median {launch:6.3f} s   (target < 1.5 s)   {launch / plain:4.1f}x docker run")
    print(f"docker run --rm {base} true   median {plain:6.3f} s")
    for label in reversed(list(bottles)):
        whole = statistics.median(exec_times[label])
        print(f"-- {label}")
        print(f"bottle exec AGENT -- true     median {whole:6.3f} s   (target <= 3x)   {whole / plain:4.1f}x docker run"
              f"   ({min(exec_times[label]):.2f}-{max(exec_times[label]):.2f} s)")
        crowd = statistics.mean(together[label])
        print(f"{args.concurrent} at once from {args.concurrent} processes  {crowd:6.3f} s in all, mean of 2 "
              f"(target <= 4x)   {crowd / whole:4.1f}x one cold exec")
    print(f"bundle idle memory            median {statistics.median(memory):6.1f} MiB (target < 150 MiB)")
    print(f"bundle CPU, start to idle     median {statistics.median(cpu):6.2f} s")

if __name__ == "__main__":
    main()
