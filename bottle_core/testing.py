"""bottle's pytest plugin: fixtures and fakes for testing bottle and its plugins.

Opt-in: a test suite that wants it says so in its ``conftest.py``::

    pytest_plugins = ["bottle_core.testing"]

Fixtures:

* ``bottle_plugins`` -- a fresh plugin manager with bottle's own defaults
  loaded; register plain objects on it, they are unregistered afterwards.
  Nothing installed is discovered, so a test sees only what it registered.
* ``manifest_factory`` -- writes a manifest (TOML or JSON) into ``tmp_path``
  and returns its path.
* ``plan_factory`` -- a staged Plan for a manifest (see :func:`make_plan`),
  with a fixed network, no engine and no backend needed.

Fakes: :class:`FakeBottle`, a Bottle handle that records what it is asked and
keeps the files copied in; :class:`FakeBackend`, a backend whose ``launch``
yields a FakeBottle and records its own teardown.

It also declares the ``integration`` marker. Importing it needs neither
docker nor an engine.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from .hookspecs import hookimpl
from .manifest import Manifest
from .plan import NetworkPlan, Plan, base_plan, stage
from .plugins import BACKEND, PLUGIN, Plugins, PluginRecord
from .sandbox import Bottle, ExecResult
from .spec import BottleSpec

#: The smallest useful manifest: one bottle, one agent with an inline prompt.
SEED_MANIFEST: dict[str, Any] = {
    "bottles": {"dev": {}},
    "agents": {"demo": {"skills": [], "prompt": "You are demo. Be brief.", "bottle": "dev"}},
}


class FixturePlugins(Plugins):
    """A :class:`~bottle_core.plugins.Plugins` that remembers what a test registered, to take it away again."""

    def __init__(self) -> None:
        super().__init__()
        self.registered: list[str] = []

    def register(self, plugin: object, name: str, kind: str = PLUGIN, record: PluginRecord | None = None) -> object:
        """Register ``plugin`` (any object or module with ``@hookimpl`` functions) as ``name`` of ``kind``.

        ``kind`` is ``"core"``, ``"backend"`` or ``"plugin"``; it decides the
        call order of the provision hooks. Returns the plugin, so a test can
        write ``impl = bottle_plugins.register(Impl(), "x", "plugin")``.
        """
        super().register(plugin, name, kind, record)
        self.registered.append(name)
        return plugin

    def unregister_all(self) -> None:
        """Unregister everything registered through :meth:`register`, newest first."""
        while self.registered:
            name = self.registered.pop()
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            self.records.pop(name, None)
            if self.backend == name:
                self.backend = None


@pytest.fixture
def bottle_plugins() -> Iterator[FixturePlugins]:
    """A fresh plugin manager with bottle's own default provisioning loaded (and nothing installed)."""
    plugins = FixturePlugins()
    plugins.load_core()
    plugins.registered.clear()  # the core defaults belong to the manager, not to the test
    try:
        yield plugins
    finally:
        plugins.unregister_all()


ManifestFactory = Callable[..., Path]

#: The network every Plan of :func:`make_plan` gets (no engine is asked for a free subnet).
FAKE_NETWORK = NetworkPlan(name="bottle-fake", subnet="10.99.0.0/24", bundle_ip="10.99.0.2", agent_ip="10.99.0.3",
                           outbound="bottle-fake-out")
FAKE_IMAGES = {"base": "debian:bookworm-slim", "agent": "bottle-agent:fake", "bundle": "bottle-bundle:fake"}


def make_plan(manifest_path: Path, state_root: Path, *, agent: str = "demo", backend: str = "fake",
              copy_cwd: bool = False, cwd: Path | None = None, staged: bool = True) -> Plan:
    """A Plan for ``agent`` of the manifest at ``manifest_path``, as a backend's ``prepare`` would make it.

    The network and images are fixed (:data:`FAKE_NETWORK`, :data:`FAKE_IMAGES`);
    with ``staged`` (the default) its state dir, prompt file and plan.json are
    written under ``state_root`` as ``bottle run`` does.
    """
    manifest = Manifest.load(manifest_path)
    spec = BottleSpec(manifest=manifest, agent=agent, copy_cwd=copy_cwd, cwd=cwd or manifest_path.parent)
    plan = base_plan(spec, backend=backend, stage_dir=state_root, network=FAKE_NETWORK.model_copy(),
                     images=dict(FAKE_IMAGES))
    if staged:
        stage(plan, manifest.prompt_text(agent))
    return plan


@pytest.fixture
def plan_factory(manifest_factory: ManifestFactory, tmp_path: Path) -> Callable[..., Plan]:
    """``plan_factory(manifest=None, **options)``: a staged Plan (:func:`make_plan`) of a manifest.

    ``manifest`` is a path, or a dict/str given to ``manifest_factory``; by
    default the seed manifest (one bottle ``dev``, one agent ``demo``).
    """

    def make(manifest: Path | Mapping[str, Any] | str | None = None, **options: Any) -> Plan:
        path = manifest if isinstance(manifest, Path) else manifest_factory(manifest)
        return make_plan(path, tmp_path / "state", **options)

    return make


class FakeBottle(Bottle):
    """A Bottle handle that runs nothing: it records each call and keeps what is copied in.

    * ``calls`` -- ``("exec", argv, user)``, ``("run", argv)``, ``("copy_in", dest)``,
      ``("ready",)``, in order; ``log`` (a list shared with others, if given) gets the same.
    * ``files`` -- every regular file copied in, by guest path: ``{path: bytes}``.
    * ``results`` -- ``{argv[0]: ExecResult}`` answers for ``exec``; others succeed with no output.
    """

    def __init__(self, plan: Plan, log: list | None = None):
        super().__init__(plan)
        self.calls: list[tuple] = [] if log is None else log
        self.files: dict[str, bytes] = {}
        self.results: dict[str, ExecResult] = {}
        self.is_ready = False

    def exec(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, stdin: bytes | None = None) -> ExecResult:
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        self.calls.append(("exec", argv, user))
        return self.results.get(argv[0], ExecResult(0, b"", b""))

    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        self.calls.append(("run", list(argv)))
        return 0

    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        self.calls.append(("copy_in", dest))
        data = tar_stream if isinstance(tar_stream, bytes) else tar_stream.read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    self.files[posixpath.normpath(posixpath.join(dest, member.name))] = tar.extractfile(member).read()  # type: ignore[union-attr]

    def copy_out(self, src: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path, data in self.files.items():
                if path == src or path.startswith(src.rstrip("/") + "/"):
                    info = tarfile.TarInfo(posixpath.relpath(path, posixpath.dirname(src)))
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def ready(self) -> None:
        self.calls.append(("ready",))
        self.is_ready = True


class FakeBackend:
    """A backend plugin whose ``launch`` yields a :class:`FakeBottle`; register it as kind ``"backend"``.

    ``events`` records ``"launch"`` and ``"teardown"``; ``bottle`` is the last handle it made.
    Set ``fail_launch`` to an exception to make bringing the bottle up fail.
    """

    def __init__(self, log: list | None = None):
        self.events: list = [] if log is None else log
        self.bottle: FakeBottle | None = None
        self.fail_launch: BaseException | None = None

    @hookimpl
    def launch(self, plan: Plan):
        @contextmanager
        def running() -> Iterator[FakeBottle]:
            self.events.append("launch")
            try:
                if self.fail_launch is not None:
                    raise self.fail_launch
                self.bottle = FakeBottle(plan, self.events)
                yield self.bottle
            finally:
                self.events.append("teardown")

        return running()


@pytest.fixture
def manifest_factory(tmp_path: Path) -> ManifestFactory:
    """Write a manifest into ``tmp_path`` and return its path.

    Call it as ``manifest_factory(data=None, *, fmt="toml", name=None,
    skills=(), files=None)``:

    * ``data`` -- a dict (written as TOML or JSON), or a string written as it
      is (for broken manifests); default :data:`SEED_MANIFEST`.
    * ``fmt`` -- ``"toml"`` or ``"json"``; ``name`` defaults to
      ``bottle.toml`` or ``bottle.json``.
    * ``skills`` -- skill names to create under ``skills/<name>/SKILL.md``.
    * ``files`` -- further files (relative path -> text), e.g. prompt files.
    """

    def make(data: Mapping[str, Any] | str | None = None, *, fmt: str = "toml", name: str | None = None,
             skills: Iterable[str] = (), files: Mapping[str, str] | None = None) -> Path:
        if fmt not in ("toml", "json"):
            raise ValueError(f"fmt must be 'toml' or 'json', not {fmt!r}")
        if data is None:
            data = SEED_MANIFEST
        for skill in skills:
            folder = tmp_path / "skills" / skill
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "SKILL.md").write_text(f"---\nname: {skill}\ndescription: test skill {skill}\n---\n")
        for relative, text in (files or {}).items():
            target = tmp_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        path = tmp_path / (name or f"bottle.{fmt}")
        if isinstance(data, str):
            path.write_text(data)
        elif fmt == "json":
            path.write_text(json.dumps(data, indent=2))
        else:
            path.write_text(to_toml(data))
        return path

    return make


def to_toml(data: Mapping[str, Any]) -> str:
    """Serialise a manifest-shaped dict (tables, strings, numbers, booleans, lists of scalars) as TOML."""
    lines: list[str] = []
    _table(lines, (), data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    # A table with only sub-tables needs no header of its own; an empty one does, or it would vanish.
    if path and (scalars or not tables):
        lines += ["", "[" + ".".join(_key(p) for p in path) + "]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, sub in tables.items():
        _table(lines, path + (key,), sub)


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "-_" for c in key) and key.isascii()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def pytest_configure(config: pytest.Config) -> None:
    """Declare bottle's markers, so plugin packages' test suites may use them too."""
    config.addinivalue_line("markers", "integration: needs a real Docker engine and the bottle images")


__all__ = ["BACKEND", "PLUGIN", "SEED_MANIFEST", "FakeBackend", "FakeBottle", "FixturePlugins", "bottle_plugins",
           "make_plan", "manifest_factory", "plan_factory", "to_toml"]
