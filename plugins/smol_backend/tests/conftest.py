"""The smol backend's own tests: bottle's pytest plugin, and a recording fake of the smolvm CLI.

The fake appends each argv (and the size and head of its stdin) as a JSON
line to a log, keeps machines in a JSON state file, answers ``--version``,
``ls --json`` and ``status --json`` in the real binary's shapes, prints the
real binary's stray ``note:`` line on stderr, and reports its own failures as
``Error: ...`` with exit 1. ``machine exec`` runs the argv after ``--`` on the
host, so exit codes and tar streams pass through for real.
"""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["bottle_core.testing"]

FAKE = r'''
import base64, json, os, subprocess, sys

NOTE = "note: no packed assets found for 'smol-vmm' (looked for a 'smol-vmm.smolmachine' sidecar next to the executable); running as the plain smolvm CLI."
LOG, STATE = os.environ["FAKE_SMOLVM_LOG"], os.environ["FAKE_SMOLVM_STATE"]
argv = sys.argv[1:]


def fail(message, code=1):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)


def load():
    try:
        with open(STATE) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def save(machines):
    with open(STATE, "w") as handle:
        json.dump(machines, handle)


def opt(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


if argv == ["--version"]:
    print("smolvm " + os.environ.get("FAKE_SMOLVM_VERSION", "1.32.2"))
    sys.exit(0)
print(NOTE, file=sys.stderr)
head, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
record = {"argv": argv}
stdin = b""
if "-i" in head or "-" == opt(head, "--image"):
    stdin = sys.stdin.buffer.read()
    record["stdin_bytes"] = len(stdin)
    record["stdin_head"] = base64.b64encode(stdin[:64]).decode()
with open(LOG, "a") as handle:
    handle.write(json.dumps(record) + "\n")

if argv[:1] != ["machine"] or len(argv) < 2:
    print("error: unrecognized subcommand\n\nUsage: smolvm <COMMAND>", file=sys.stderr)
    sys.exit(2)
verb, machines = argv[1], load()
name = opt(head, "--name")
if verb == "exec" and not rest:
    print("error: the following required arguments were not provided:\n  <COMMAND>...\n\nUsage: smolvm machine exec",
          file=sys.stderr)
    sys.exit(2)
if verb == "ls":
    print(json.dumps([dict(m, name=n) for n, m in machines.items()], indent=2))
elif verb == "create":
    if name in machines:
        fail(f"config operation failed: create machine: machine '{name}' already exists or is being created")
    labels = dict(head[i + 1].split("=", 1) for i, a in enumerate(head) if a == "--label")
    machines[name] = {"state": "created", "pid": None, "labels": labels, "cmd": rest}
    save(machines)
    print(f"Created machine: {name}")
elif name not in machines:
    fail(f"config operation failed: machine status: machine '{name}' not found" if verb == "status"
         else f"vm not found: {name}")
elif verb == "start":
    if os.environ.get("FAKE_SMOLVM_START_ERROR"):
        fail("agent operation failed: start machine: " + os.environ["FAKE_SMOLVM_START_ERROR"])
    machines[name].update(state="running", pid=4242)
    save(machines)
    print(f"Machine '{name}' running (PID: 4242)")
elif verb == "status":
    print(json.dumps(dict(machines[name], name=name), indent=2))
elif verb == "stop":
    if machines[name]["state"] != "running":
        print(f"Machine '{name}' is not running (state: {machines[name]['state']})")
    else:
        machines[name].update(state="stopped", pid=None)
        save(machines)
        print(f"Stopped machine: {name}")
elif verb == "delete":
    if "-f" not in head:
        print("Cancelled")
        sys.exit(1)
    del machines[name]
    save(machines)
    print(f"Deleted machine: {name}")
elif verb == "exec":
    if machines[name]["state"] != "running":
        fail(f"agent operation failed: connect: machine '{name}' is not running. "
             f"Start it with 'smolvm machine start --name {name}'")
    env = dict(os.environ)
    env.update(head[i + 1].split("=", 1) for i, a in enumerate(head) if a == "-e")
    workdir = opt(head, "-w")
    cwd = os.environ.get("FAKE_SMOLVM_GUEST_ROOT", "/") + (workdir or "/")
    try:
        done = subprocess.run(rest, input=stdin, capture_output=True, env=env,
                              cwd=cwd if os.path.isdir(cwd) else None)
    except FileNotFoundError:
        fail("agent operation failed: vm exec: failed to spawn command: No such file or directory (os error 2)")
    sys.stdout.buffer.write(done.stdout)
    sys.stderr.buffer.write(done.stderr)
    sys.exit(done.returncode)
else:
    fail(f"config operation failed: fake smolvm does not know {verb}")
'''


@dataclass
class FakeSmolvm:
    """The fake's files: the executable, the argv log and the machine state."""

    path: Path
    log: Path
    state: Path

    def calls(self) -> list[dict]:
        """Every recorded call but ``--version``, oldest first."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def machines(self) -> dict:
        return json.loads(self.state.read_text()) if self.state.exists() else {}


@pytest.fixture
def fake_smolvm(tmp_path, monkeypatch) -> FakeSmolvm:
    """A fake smolvm as ``$BOTTLE_SMOLVM``; set ``FAKE_SMOLVM_VERSION`` to pose as another version."""
    from bottle_smol import binary

    folder = tmp_path / "fake-smolvm"
    folder.mkdir()
    path = folder / "smolvm"
    path.write_text(f"#!{sys.executable}\n{FAKE}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    fake = FakeSmolvm(path, folder / "calls.jsonl", folder / "machines.json")
    monkeypatch.setenv("BOTTLE_SMOLVM", str(path))
    monkeypatch.setenv("FAKE_SMOLVM_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_SMOLVM_STATE", str(fake.state))
    monkeypatch.delenv("BOTTLE_SMOLVM_STATE_DIR", raising=False)
    binary._version.cache_clear()
    yield fake
    binary._version.cache_clear()
