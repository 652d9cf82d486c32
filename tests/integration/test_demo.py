"""`make demo`, as a user runs it, and the README's transcript of it.

The demo is the README's second promised command: it runs here exactly as
``scripts/demo.sh`` runs it, and what it prints must still be what the
README shows (times, sizes, counts and names made at random set aside).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 900

#: What differs from one run to the next, and what it becomes for the comparison.
VARYING = [
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "HH:MM:SS"),
    (re.compile(r"\bafter \d+(\.\d+)?s\b"), "after Ns"),
    (re.compile(r"bottle-demo-net-[0-9a-f]+"), "bottle-demo-net-X"),
    (re.compile(r"/tmp/bottle-demo-[^/\s]+/"), "/tmp/bottle-demo-X/"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}/\d{1,2}\b"), "SUBNET"),
    (re.compile(r"\b(out|in)=\d+B\b"), r"\1=NB"),
    (re.compile(r"egress: \d+ allowed, \d+ blocked"), "egress: N allowed, N blocked"),
]


def normalised(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        for pattern, replacement in VARYING:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return lines


def readme_transcript() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```text\n", readme.index("Its output, from step 3:")) + len("```text\n")
    return readme[start:readme.index("```", start)]


def model_host_line(line: str) -> bool:
    """A request claude made to the model host: how many it makes (settings, retries) is claude's business."""
    return "rule=model-script" in line


@pytest.fixture(scope="module")
def demo_output() -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_demo_works(demo_output):
    assert "The demo worked" in demo_output
    assert "The demo did NOT work" not in demo_output


def test_the_readme_shows_what_the_demo_prints(demo_output):
    shown = normalised(readme_transcript())
    printed = normalised(demo_output[demo_output.index("[3/5]"):])
    hint = "the README's transcript of `make demo` is out of date: paste the demo's output from step 3 into it"
    assert [l for l in shown if not model_host_line(l)] == [l for l in printed if not model_host_line(l)], hint
    model_lines = {line for line in printed if model_host_line(line)}
    assert all(line in model_lines for line in shown if model_host_line(line)), hint
