"""Pushing through the git gate against pushing directly, in one run on this machine.

A commit adding 10 MB of new (incompressible) content is pushed to a bare
repository on the host, N times each way, every time to a fresh copy of the
same repository:

  - directly: ``git push`` on the host;
  - through the gate: ``git push origin`` inside a bottle whose remote is that
    repository (timed inside the agent, so the engine's exec overhead is left out).

Prints the medians, the ratio and the target (under 1.5x direct + 0.3 s),
plus the bundle's memory with the gate idle, and the mean of a small request
to the gate (``git ls-remote origin`` in the agent, ``--requests`` times in a
row, timed inside the agent): what a stall per response (a delayed ACK met by
Nagle's algorithm, ~40 ms) would show in.

    python benchmarks/bench_git.py [-n 5] [--mb 10] [--requests 20]
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

IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.test"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def fresh_bare(template: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target)
    return target


def direct_push(work: Path, bare: Path, mb: int) -> float:
    (work / "blob.bin").write_bytes(_random(mb))
    git(work, "add", "blob.bin")
    git(work, "commit", "-qm", "10 MB")
    start = time.perf_counter()
    git(work, "push", "-q", str(bare), "HEAD:refs/heads/bottle/direct")
    elapsed = time.perf_counter() - start
    git(work, "reset", "-q", "--hard", "HEAD~1")
    return elapsed


def _random(mb: int) -> bytes:
    import os

    return os.urandom(mb * 1024 * 1024)


def gate_push(bottle, mb: int) -> float:
    url = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}/up.git"
    script = (f"set -e; rm -rf /tmp/c; git clone -q {url} /tmp/c; cd /tmp/c; git config user.email b@e.test;"
              f" git config user.name bench; head -c {mb * 1024 * 1024} /dev/urandom > blob.bin; git add blob.bin;"
              " git commit -qm '10 MB'; s=$(date +%s.%N); git push -q origin HEAD:refs/heads/bottle/gate;"
              " e=$(date +%s.%N); echo \"$s $e\"")
    out = bottle.check(["sh", "-c", script], workdir="/tmp")
    start, end = map(float, out.text().split()[-2:])
    return end - start


def gate_requests(bottle, count: int) -> float:
    """Mean seconds of one ``git ls-remote`` of the gate remote, ``count`` in a row inside the agent."""
    url = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}/up.git"
    script = (f"s=$(date +%s.%N); for i in $(seq {count}); do git ls-remote -q {url} >/dev/null || exit 1; done;"
              " e=$(date +%s.%N); echo \"$s $e\"")
    out = bottle.check(["sh", "-c", script], workdir="/tmp")
    start, end = map(float, out.text().split()[-2:])
    return (end - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20, help="small requests to the gate, in a row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-git-") as tmp:
        root = Path(tmp)
        template = root / "template.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(template)], check=True)
        work = root / "work"
        subprocess.run(["git", "clone", "-q", str(template), str(work)], check=True, capture_output=True)
        (work / "README").write_text("bench\n")
        git(work, "add", "README")
        git(work, "commit", "-qm", "start")
        git(work, "push", "-q", str(template), "HEAD:refs/heads/main")

        direct = []
        for index in range(args.n):
            direct.append(direct_push(work, fresh_bare(template, root / f"direct-{index}.git"), args.mb))

        bare = fresh_bare(template, root / "gate.git")
        manifest_dir = root / "manifest"
        manifest_dir.mkdir()
        (manifest_dir / "bottle.json").write_text(json.dumps(
            {"bottles": {"dev": {"git": {"up": {"url": str(bare)}}}}, "agents": {"bench": {"bottle": "dev"}}}))
        plugins = Plugins()
        plugins.load_core()
        plugins.load_backend("docker")
        manifest = Manifest.load(manifest_dir / "bottle.json")
        plan = session.prepare(plugins, BottleSpec(manifest=manifest, agent="bench", copy_cwd=False, cwd=manifest_dir))
        through = []
        with session.running(plugins, plan) as bottle:
            gate_requests(bottle, 2)  # warm: the gate's first fetch from the upstream
            small = gate_requests(bottle, args.requests)
            for _ in range(args.n):
                git(bare, "update-ref", "-d", "refs/heads/bottle/gate")
                through.append(gate_push(bottle, args.mb))
            stats = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}",
                                    bottle.bundle_id], capture_output=True, text=True).stdout.strip()
            gate_rss = bottle.exec_bundle(["sh", "-c", "for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline "
                                                       "| grep -q 'image.git_gate $'; then "
                                                       "grep VmRSS $p/status; fi; done"]).text()

    d, g = statistics.median(direct), statistics.median(through)
    target = 1.5 * d + 0.3
    print(f"push of a {args.mb} MB commit to a host bare repository, median of {args.n}:")
    print(f"  direct git push on the host   {d:6.3f} s")
    print(f"  through the git gate          {g:6.3f} s   ({g / d:.2f}x direct, +{g - d:.3f} s)")
    print(f"  target (1.5x direct + 0.3 s)  {target:6.3f} s   {'met' if g < target else 'NOT met'}")
    print(f"  git ls-remote through the gate, mean of {args.requests} in a row: {small * 1000:.1f} ms")
    print(f"bundle memory after the pushes: {stats}")
    if gate_rss.split():
        print(f"git gate server resident set: {int(gate_rss.split()[1]) / 1024:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
