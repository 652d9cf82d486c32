"""The recording fake smolvm (conftest.py) answers as the real binary does, so tests against it mean something."""

from __future__ import annotations

import json
import os


def test_the_fake_answers_like_the_real_binary(fake_smolvm):
    import subprocess

    env = dict(os.environ)
    version = subprocess.run([fake_smolvm.path, "--version"], capture_output=True, env=env, check=True)
    assert version.stdout.decode() == "smolvm 1.32.2\n"
    listed = subprocess.run([fake_smolvm.path, "machine", "ls", "--json"], capture_output=True, env=env, check=True)
    assert json.loads(listed.stdout) == []
    assert listed.stderr.startswith(b"note: no packed assets found")
    missing = subprocess.run([fake_smolvm.path, "machine", "status", "--name", "x", "--json"], capture_output=True,
                             env=env)
    assert missing.returncode == 1
    assert missing.stderr.decode().splitlines()[-1] == \
        "Error: config operation failed: machine status: machine 'x' not found"
