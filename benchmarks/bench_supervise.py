"""What supervision costs each tool call, in one run on this machine.

Runs the real claude in a bottle against a 20-tool-call ``--model-script``
(each call ``Bash: true``), with supervision ``off`` and ``enforce`` (a deny
and an ask rule that do not match, so every call is judged and allowed),
several times each. A tool call's round trip is the time between two
consecutive requests the scripted model server receives: claude reads the
reply, runs the hooks and the tool, and asks again. The added latency per
call is the difference of the two modes' median (and p99) round trips.

With ``--baseline PATH`` (another checkout's ``bottle`` executable) the same
rehearsals run with it too, interleaved, and both are printed side by side.

Nothing leaves the machine: the model host is answered by the script.

    python benchmarks/bench_supervise.py [-n 2] [--baseline OTHER/.venv/bin/bottle]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BOTTLE = str(Path(sys.executable).with_name("bottle"))
CALLS = 20
TARGET_MS = 20.0


def manifest(mode: str) -> dict:
    supervise = {"mode": mode}
    if mode == "enforce":
        supervise.update(deny=["Bash(rm -rf:*)"], ask=["Bash(git push:*)"])
    return {"bottles": {"dev": {}}, "agents": {"bench": {"bottle": "dev", "prompt": "Be brief.", "supervise": supervise}}}


def round_trips(folder: Path, mode: str, bottle: str = BOTTLE) -> list[float]:
    """Seconds between consecutive model requests of one rehearsal (CALLS of them)."""
    (folder / "bottle.json").write_text(json.dumps(manifest(mode)))
    script = [{"tool_use": {"name": "Bash", "input": {"command": "true", "description": f"call {i}"}}}
              for i in range(CALLS)] + ["done"]
    (folder / "script.json").write_text(json.dumps(script))
    run = subprocess.run([bottle, "run", "-m", "bottle.json", "--no-copy-cwd", "--model-script", "script.json",
                          "bench", "--", "go"], cwd=folder, capture_output=True, timeout=600)
    if run.returncode != 0:
        sys.exit(f"bottle run failed ({mode}): {run.stderr.decode()[-800:]}")
    logs = subprocess.run([bottle, "logs", "bench", "--model", "--json"], cwd=folder, capture_output=True, check=True)
    times = [r["time"] for r in map(json.loads, logs.stdout.decode().splitlines())
             if r["method"] == "POST" and r["path"].startswith("/v1/messages") and "count_tokens" not in r["path"]]
    if len(times) != CALLS + 1:
        sys.exit(f"expected {CALLS + 1} model requests in mode {mode}, saw {len(times)}")
    return [b - a for a, b in zip(times, times[1:])]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def report(label: str, samples: dict[str, list[float]]) -> None:
    print(f"-- {label}")
    print(f"{'mode':<8} {'median':>9} {'p99':>9} {'min':>9}")
    for mode, values in samples.items():
        print(f"{mode:<8} {statistics.median(values) * 1000:>7.1f}ms {p99(values) * 1000:>7.1f}ms "
              f"{min(values) * 1000:>7.1f}ms")
    added_median = (statistics.median(samples["enforce"]) - statistics.median(samples["off"])) * 1000
    added_p99 = (p99(samples["enforce"]) - p99(samples["off"])) * 1000
    # The quickest round trips are the least disturbed by the rest of a busy machine.
    added_min = (min(samples["enforce"]) - min(samples["off"])) * 1000
    verdict = "meets" if added_median < TARGET_MS else "misses"
    print(f"added by supervision per tool call: median {added_median:.1f} ms, p99 {added_p99:.1f} ms, "
          f"min {added_min:.1f} ms ({verdict} the {TARGET_MS:.0f} ms median target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2, help="rehearsals per mode (default 2)")
    parser.add_argument("--baseline", help="another bottle executable to measure alongside, interleaved")
    args = parser.parse_args()
    bottles = {"this checkout": BOTTLE, **({"baseline": args.baseline} if args.baseline else {})}
    samples = {label: {"off": [], "enforce": []} for label in bottles}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.n):
            for label, bottle in bottles.items():
                for mode in samples[label]:  # interleaved, so a busy moment hurts every mode alike
                    samples[label][mode] += round_trips(Path(tmp), mode, bottle)
    print(f"{CALLS} tool calls per rehearsal, {args.n} rehearsals per mode; round trip = one tool call")
    for label in reversed(list(bottles)):
        report(label, samples[label])


if __name__ == "__main__":
    main()
