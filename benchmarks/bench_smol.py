"""What a smol bottle's start-up costs before and at the guest boot, with the real engine.

Prints, in seconds: exporting the agent image from the Docker engine (what
the first launch after a build pays; later launches reuse the export),
``machine create`` from that export (the backend's own flags, in a throwaway
state dir, never started), ``bottle backends`` and ``bottle doctor`` with the
boot cached, and one throwaway boot (``bottle doctor --refresh``: a success
where a guest boots, the engine's error where none does). Needs the agent
image built (``bottle image build``).

    python benchmarks/bench_smol.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn):
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result


def main() -> None:
    import docker

    from bottle_core import settings
    from bottle_core.images import image_names
    from bottle_smol.binary import find
    from bottle_smol.engine import Engine
    from bottle_smol.launch import exported_image

    client = docker.from_env(timeout=300)
    base = settings.current().base_image or "debian:bookworm-slim"
    agent = image_names(base, client.images.get(base).id)["agent"]
    bottle = str(Path(sys.executable).with_name("bottle"))
    scratch = Path(tempfile.mkdtemp(prefix="smolb-", dir="/tmp"))
    try:
        seconds, archive = timed(lambda: exported_image(client, agent, cache=scratch / "images"))
        print(f"export {agent} ({archive.stat().st_size / 1e6:.0f} MB): {seconds:.1f} s")
        engine = Engine(find(), state_dir=str(scratch / "state"))
        seconds, _ = timed(lambda: engine.create("bench", labels={"bottle.bench": "1"}, image=str(archive),
                                                 options=["--cpus", "1", "--mem", "512",
                                                          "--allow-cidr", "10.213.0.2/32", "--dns", "10.213.0.2"],
                                                 workload=["sleep", "infinity"]))
        print(f"machine create from the export: {seconds:.1f} s")
        engine.delete("bench")
        for args in (["backends"], ["doctor", "--json"]):
            seconds, _ = timed(lambda: subprocess.run([bottle, *args], capture_output=True, check=False))
            print(f"bottle {' '.join(args)} (boot cached): {seconds:.1f} s")
        seconds, done = timed(lambda: subprocess.run([bottle, "doctor", "--json", "--refresh"], capture_output=True))
        smol = next(r for r in json.loads(done.stdout) if r["name"] == "smol")
        outcome = "booted" if smol["boot"].get("ok") else f"failed: {smol['boot'].get('error') or smol['reason']}"
        print(f"bottle doctor --refresh (one throwaway boot, {smol['boot'].get('seconds')} s of it): "
              f"{seconds:.1f} s, {outcome}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
