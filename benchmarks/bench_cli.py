"""How fast the ``bottle`` command starts: ``bottle --help`` and ``bottle backends``, run N times each.

Runs the console script installed next to this interpreter (the virtualenv's)
in a subprocess, as a user would, and prints median, p90 and min wall time in
milliseconds, beside each command's target median (150 ms for ``--help``, 250 ms for ``backends``, which
loads every backend to ask whether it is available). Exits 0 whatever the
figures (it measures, it does not judge); ``--check`` makes a miss exit 1.

    python benchmarks/bench_cli.py [-n 20] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Each command and its target median, in milliseconds.
COMMANDS = ((["--help"], 150.0), (["backends"], 250.0))


def bottle_script() -> Path:
    """The ``bottle`` console script of the interpreter running this file."""
    script = Path(sys.executable).with_name("bottle")
    if not script.is_file():
        sys.exit(f"no bottle console script next to {sys.executable}: install bottle-core into this environment")
    return script


def time_once(argv: list[str]) -> float:
    """Wall time of one run in ms; a failed run is reported, not timed."""
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        sys.exit(f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.decode(errors='replace').strip()}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20, help="timed runs per command (default 20)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a median is over its target")
    args = parser.parse_args()
    if not 1 <= args.runs <= 1000:
        parser.error("--runs must be between 1 and 1000")

    script = bottle_script()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<18} {'runs':>4} {'median':>9} {'p90':>9} {'min':>9} {'target':>9}")
    over = []
    for command, target in COMMANDS:
        argv = [str(script), *command]
        time_once(argv)  # warm-up: file cache, stevedore's entry-point cache
        samples = [time_once(argv) for _ in range(args.runs)]
        median = statistics.median(samples)
        label = "bottle " + " ".join(command)
        print(f"{label:<18} {args.runs:>4} {median:>7.1f}ms {percentile(samples, 0.9):>7.1f}ms {min(samples):>7.1f}ms "
              f"{target:>7.0f}ms")
        if median > target:
            over.append(label)
    if over:
        print(f"over the median target: {', '.join(over)}")
    else:
        print("every median is under its target")
    return 1 if over and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
