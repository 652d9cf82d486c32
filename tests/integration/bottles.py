"""Helpers for integration tests that start real bottles on the real engine."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bottle_core import session
from bottle_core.manifest import Manifest
from bottle_core.plugins import Plugins
from bottle_core.spec import BottleSpec

BOTTLE = str(Path(sys.executable).with_name("bottle"))


def write_manifest(folder: Path, obj: dict, skills: dict[str, dict[str, str]] | None = None) -> Path:
    """A manifest (JSON) in ``folder``, with skill folders under ``folder/skills``.

    Its bindings are approved as its author, the user, would approve them with
    `bottle trust` (``internet_egress`` opts a private range in, a binding), in
    the session's config folder (``conftest.approvals_of_their_own``): a test of
    trust itself gives its runs a config folder of their own
    (``XDG_CONFIG_HOME``), where nothing is approved.
    """
    for skill, files in (skills or {}).items():
        for rel, text in files.items():
            path = folder / "skills" / skill / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    path = folder / "bottle.json"
    path.write_text(json.dumps(obj))
    _approve(path)
    return path


def _approve(path: Path) -> None:
    from bottle_core import trust
    from bottle_core.errors import BottleError

    try:
        manifest = Manifest.load(path)
    except BottleError:
        return  # a manifest written to be refused: nothing to approve
    if trust.bindings(manifest):
        trust.approve(manifest)


def docker_plugins(backend: str = "docker") -> Plugins:
    plugins = Plugins()
    plugins.load_core()
    plugins.load_backend(backend)
    return plugins


@contextmanager
def bottle_of(manifest_path: Path, agent: str, *, copy_cwd: bool = False, cwd: Path | None = None,
              backend: str = "docker", start: str = "cold", model_script: Path | None = None):
    """A running bottle of ``agent`` on ``backend``, provisioned like `bottle run` does, removed afterwards.

    ``start="pooled"``: claimed from a warm pool filled for it (and drained afterwards), as `bottle run` would.
    """
    manifest = Manifest.load(manifest_path)
    cwd = cwd or manifest_path.parent
    spec = BottleSpec(manifest=manifest, agent=agent, copy_cwd=copy_cwd, cwd=cwd, model_script=model_script)
    plugins = docker_plugins(backend)
    with warm_pool(manifest_path, agent, cwd=cwd, backend=backend) if start == "pooled" else _nothing() as pooled:
        plan = session.prepare(plugins, spec)
        with session.running(plugins, plan) as bottle:
            if start == "pooled":
                assert bottle.plan.slug in pooled, "the run did not claim the pooled bottle"
            yield bottle


@contextmanager
def _nothing():
    yield []


@contextmanager
def warm_pool(manifest_path: Path, agent: str, *, cwd: Path, backend: str = "docker", size: int = 1):
    """A warm pool of ``agent`` filled with `bottle pool fill` in ``cwd``: yields its ready slugs.

    Afterwards it is drained with `bottle pool drain`, and nothing of its bottles may be left.
    """
    trusted = bottle_cli("trust", "-m", str(manifest_path))  # `bottle pool fill` asks for it as `bottle run` does
    assert trusted.returncode == 0, trusted.stderr.decode()
    filled = bottle_cli("--backend", backend, "pool", "fill", "-m", str(manifest_path), "--size", str(size), agent,
                        cwd=cwd, timeout=600)
    assert filled.returncode == 0, filled.stderr.decode()
    pooled = ready_slugs(manifest_path, agent)
    assert len(pooled) == size, pooled
    try:
        yield pooled
    finally:
        seen = set(pooled) | set(ready_slugs(manifest_path, agent))  # the keeper's refills too
        drained = bottle_cli("pool", "drain", "-m", str(manifest_path), agent, cwd=cwd)
        assert drained.returncode == 0, drained.stderr.decode()
        for slug in seen:
            assert left_after("bottle.slug", slug) == ([], []), f"pooled bottle {slug} left after the drain"


def ready_slugs(manifest_path: Path, agent: str) -> list[str]:
    """The ready bottles of ``agent``'s pool, as `bottle pool ls` shows them."""
    rows = json.loads(bottle_cli("pool", "ls", "--json").stdout)
    return [slug for row in rows if row["agent"] == agent and row["manifest"] == str(manifest_path.resolve())
            for slug in row["bottles"]]


def was_claimed(slug: str) -> bool:
    """Whether a run took pooled bottle ``slug`` over (its state dir names the run as the bottle's owner)."""
    from bottle_core.plan import state_root
    from bottle_core.reaper import OWNER_FILE

    return (state_root() / slug / OWNER_FILE).exists()


def resources_of(label: str, value: str) -> tuple[list[str], list[str]]:
    """Names of containers and networks carrying ``label=value``."""
    containers = subprocess.run(["docker", "ps", "-a", "--filter", f"label={label}={value}", "--format", "{{.Names}}"],
                                capture_output=True, text=True, check=True).stdout.split()
    networks = subprocess.run(["docker", "network", "ls", "--filter", f"label={label}={value}", "--format",
                               "{{.Name}}"], capture_output=True, text=True, check=True).stdout.split()
    return containers, networks


#: Seconds a bottle's removal may take once its `bottle` process is done (a bound, not a figure: see benchmarks/).
GONE_WITHIN = 60


def left_after(label: str, value: str) -> tuple[list[str], list[str]]:
    """What still carries ``label=value`` once its removal had time to finish (empty lists when all went).

    A bottle's teardown hands the engine's removal to a process of its own, so the user has the exit
    status first: the containers and networks go just after `bottle` returns.
    """
    deadline = time.monotonic() + GONE_WITHIN
    left = resources_of(label, value)
    while left != ([], []) and time.monotonic() < deadline:
        time.sleep(0.2)
        left = resources_of(label, value)
    return left


def smol_machines(slug: str) -> list[str]:
    """Names of the smolvm machines labelled with bottle ``slug`` (none where bottle-smol is not installed)."""
    try:
        from bottle_smol.binary import find
        from bottle_smol.engine import Engine
    except ImportError:
        return []
    from bottle_core.errors import BottleError

    try:
        machines = Engine(find()).ls()
    except BottleError:
        return []  # no smolvm here: no machine either
    return [m["name"] for m in machines if (m.get("labels") or {}).get("bottle.slug") == slug]


def bottle_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 180,
               input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the real `bottle` console script."""
    return subprocess.run([BOTTLE, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          timeout=timeout, input=input if input is not None else b"")


def tcp_probe(bottle, host: str, port: int, timeout: int = 2) -> bool:
    """True when a TCP connection from inside the agent to host:port succeeds."""
    result = bottle.exec(["timeout", str(timeout), "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"])
    return result.returncode == 0


@contextmanager
def background_bottle(manifest_path: Path, agent: str, *command: str, timeout: float = 120):
    """`bottle exec AGENT -- COMMAND` running in the background: yields (process, slug) once `bottle ls` shows it.

    The process's stdin and stdout are pipes: a command can wait for the test's go (``read _``, or EOF when
    the test closes stdin) and say where it is (:func:`wait_for_line`), instead of sleeping and hoping.
    """
    before = {row["slug"] for row in json.loads(bottle_cli("ls", "--json").stdout)}  # other runs of the same agent
    proc = subprocess.Popen([BOTTLE, "exec", "-m", str(manifest_path), agent, "--", *(command or ("sleep", "120"))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        slug = None
        while slug is None:
            assert proc.poll() is None, f"bottle exec ended early: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "bottle ls never showed the bottle"
            rows = json.loads(bottle_cli("ls", "--json").stdout)
            slug = next((row["slug"] for row in rows if row["agent"] == agent and row["slug"] not in before), None)
            time.sleep(0.2)
        yield proc, slug
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()


def wait_for_line(proc: subprocess.Popen, text: bytes, timeout: float = 120) -> bytes:
    """Read the process's stdout until a line containing ``text`` (the command says it got there); that line."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the command never printed {text!r}"
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if not ready:
            continue
        line = proc.stdout.readline()
        assert line, f"the command ended before printing {text!r}: {proc.stderr.read().decode()}"
        if text in line:
            return line
