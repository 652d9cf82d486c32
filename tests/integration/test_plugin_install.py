"""Plugins as users install them: pip install a distribution, and bottle finds it; uninstall, and it is gone.

These tests change the running virtualenv for a moment and put it back as it
was (finally), whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HELLO_SOURCE = REPO / "examples" / "bottle-hello"
SMOL_SOURCE = REPO / "plugins" / "smol_backend"
BOTTLE = Path(sys.executable).with_name("bottle")
PIP_TIMEOUT = 300


def pip(*args: str) -> None:
    """Run pip of the interpreter running the tests; dependencies are already there (--no-deps)."""
    result = subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], capture_output=True, text=True,
                            timeout=PIP_TIMEOUT, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"pip {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, distribution as find

    try:
        find(distribution)
    except PackageNotFoundError:
        return False
    return True


def bottle(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("BOTTLE_PLUGINS", "BOTTLE_STRICT_PLUGINS")}
    return subprocess.run([str(BOTTLE), *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def listed(args: list[str], cwd: Path) -> dict[str, dict]:
    result = bottle(*args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def hello_installed(tmp_path_factory) -> Iterator[Path]:
    """bottle-hello pip-installed (not editable) from a copy of the example, uninstalled afterwards."""
    if installed("bottle-hello"):  # left behind by an interrupted run
        pip("uninstall", "--yes", "bottle-hello")
    # Build from a copy, so the build leaves nothing in the source tree.
    source = tmp_path_factory.mktemp("hello") / "bottle-hello"
    shutil.copytree(HELLO_SOURCE, source)
    try:
        pip("install", "--no-deps", str(source))
        yield source
    finally:
        if installed("bottle-hello"):
            pip("uninstall", "--yes", "bottle-hello")


def test_an_installed_plugin_is_listed_with_its_distribution(hello_installed, tmp_path):
    plugins = listed(["plugins"], tmp_path)

    hello = plugins["hello"]
    assert (hello["distribution"], hello["version"], hello["loaded"]) == ("bottle-hello", "0.1.0", True)
    assert set(hello["hooks"]) == {"provision_supervise", "register_commands"}
    assert hello["error"] is None


def test_an_installed_plugin_adds_its_command(hello_installed, tmp_path):
    result = bottle("hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from bottle-hello, world!\n"

    assert bottle("hello", "Ada", cwd=tmp_path).stdout == "Hello from bottle-hello, Ada!\n"
    assert "hello" in bottle("--help", cwd=tmp_path).stdout


def test_bottle_plugins_can_leave_an_installed_plugin_out(hello_installed, tmp_path):
    result = bottle("hello", cwd=tmp_path, env={"BOTTLE_PLUGINS": ""})

    assert result.returncode == 2
    assert "No such command 'hello'" in result.stderr
    assert bottle("hello", cwd=tmp_path, env={"BOTTLE_PLUGINS": "hello"}).returncode == 0


def test_the_plugin_writes_its_file_into_a_real_bottle(hello_installed, tmp_path):
    manifest = tmp_path / "bottle.json"
    manifest.write_text(json.dumps({"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev"}}}))

    result = bottle("exec", "-m", str(manifest), "demo", "cat", "/home/agent/.bottle-hello", cwd=tmp_path,
                    env={"XDG_STATE_HOME": str(tmp_path / "state")}, timeout=300)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from bottle-hello, demo!\n"


def test_installing_a_backend_package_adds_the_backend_and_uninstalling_removes_it(tmp_path):
    was_installed = installed("bottle-smol")
    try:
        pip("uninstall", "--yes", "bottle-smol")
        assert "smol" not in listed(["backends"], tmp_path)
        unknown = bottle("--backend", "smol", "ls", cwd=tmp_path)
        assert unknown.returncode == 2 and "pip install bottle-smol" in unknown.stderr

        pip("install", "--no-deps", "--editable", str(SMOL_SOURCE))
        smol = listed(["backends"], tmp_path)["smol"]
        assert smol["distribution"] == "bottle-smol"
        assert "docker" in listed(["backends"], tmp_path), "installing one backend must not hide another"
    finally:
        # Leave the environment as it was: bottle-smol installed editable (as the set-up does), or absent.
        if was_installed:
            if not installed("bottle-smol"):
                pip("install", "--no-deps", "--editable", str(SMOL_SOURCE))
        elif installed("bottle-smol"):
            pip("uninstall", "--yes", "bottle-smol")


def test_uninstalling_a_plugin_removes_it_and_its_command(hello_installed, tmp_path):
    # Runs last of this module: it takes away what the module's fixture installed.
    assert "hello" in listed(["plugins"], tmp_path)

    pip("uninstall", "--yes", "bottle-hello")

    assert "hello" not in listed(["plugins"], tmp_path)
    result = bottle("hello", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'hello'" in result.stderr and "Traceback" not in result.stderr
