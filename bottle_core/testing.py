"""bottle's pytest plugin: fixtures for testing bottle and its plugins.

Installed with bottle-core (entry point ``pytest11: bottle``), so the tests of
every backend and third-party plugin get these fixtures without importing
anything:

* ``bottle_plugins`` -- a fresh plugin manager with bottle's own defaults
  loaded; register plain objects on it, they are unregistered afterwards.
  Nothing installed is discovered, so a test sees only what it registered.
* ``manifest_factory`` -- writes a manifest (TOML or JSON) into ``tmp_path``
  and returns its path.

It also declares the ``integration`` marker. Importing it needs neither
docker nor an engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .plugins import BACKEND, PLUGIN, Plugins, PluginRecord

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


__all__ = ["BACKEND", "PLUGIN", "SEED_MANIFEST", "FixturePlugins", "bottle_plugins", "manifest_factory", "to_toml"]
