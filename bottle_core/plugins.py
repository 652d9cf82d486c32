"""Plugin discovery and calling: stevedore finds and loads, pluggy calls.

Two entry-point groups:

* ``bottle.backends`` -- one of many: only the selected backend is loaded and
  registered, so a hook call never reaches an unselected backend.
* ``bottle.plugins`` -- all of many: every provisioner is loaded (unless
  ``BOTTLE_PLUGINS`` names exactly which), each in its own try, so one broken
  plugin is reported by name and does not take the tool down
  (``BOTTLE_STRICT_PLUGINS=1`` makes it fatal).

Call order of the provision hooks: bottle's own defaults, then the backend,
then the plugins in the order they were found.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import BackendUnavailable, BottleError, PluginError, UsageError

BACKEND_GROUP = "bottle.backends"
PLUGIN_GROUP = "bottle.plugins"
DEFAULT_BACKEND = "docker"
#: Distributions that provide the backends bottle knows of, for "install X" hints.
KNOWN_BACKENDS = {"docker": "bottle-docker", "smol": "bottle-smol"}

CORE, BACKEND, PLUGIN = "core", "backend", "plugin"
_RANK = {CORE: 0, BACKEND: 1, PLUGIN: 2}


@dataclass
class PluginRecord:
    """What bottle knows of one plugin: where it came from, and whether it loaded."""

    name: str
    kind: str
    distribution: str | None = None
    version: str | None = None
    target: str | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "distribution": self.distribution, "version": self.version,
                "entry_point": self.target, "loaded": self.error is None, "error": self.error, "hooks": self.hooks}


def _dist_of(entry_point: Any) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _record(entry_point: Any, kind: str, error: str | None = None) -> PluginRecord:
    # stevedore's cached entry points carry no distribution; importlib.metadata's do.
    group = BACKEND_GROUP if kind == BACKEND else PLUGIN_GROUP
    distribution, version = _dist_of(entry_points(group).get(entry_point.name, entry_point))
    return PluginRecord(entry_point.name, kind, distribution, version, entry_point.value, error)


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def new_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows bottle's hookspecs and nothing else."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


class Plugins:
    """One pluggy manager, and the record of every plugin it holds."""

    def __init__(self) -> None:
        self.pm = new_manager()
        self.records: dict[str, PluginRecord] = {}
        self.backend: str | None = None

    # -- registration ----------------------------------------------------------

    def register(self, plugin: object, name: str, kind: str, record: PluginRecord | None = None) -> None:
        """Register a plugin object (tests use this directly) and check its hook names."""
        try:
            # register() refuses arguments a hook does not have; check_pending() unknown hook names.
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            rec = record or PluginRecord(name, kind)
            raise PluginError(name, rec.distribution, f"does not match bottle's hooks: {' '.join(str(exc).split())}",
                              hint="fix the hook's name or arguments, or upgrade bottle-core") from None
        rec = record or PluginRecord(name, kind)
        rec.hooks = sorted({impl.name for impl in self.pm.get_hookcallers(plugin) or []})
        self.records[name] = rec
        if kind == BACKEND:
            self.backend = name

    def load_core(self) -> None:
        """Register bottle's own default provisioning, the same way third parties plug in."""
        from . import claude_state, provision

        for module, name in ((provision, "bottle-core"), (claude_state, "bottle-core.claude-state")):
            self.register(module, name, CORE, PluginRecord(name, CORE, "bottle-core", _core_version()))

    def load_plugins(self, *, strict: bool | None = None) -> list[PluginRecord]:
        """Load every ``bottle.plugins`` entry point (or those named in ``BOTTLE_PLUGINS``)."""
        from stevedore import ExtensionManager

        if strict is None:
            strict = os.environ.get("BOTTLE_STRICT_PLUGINS", "") not in ("", "0")
        wanted = os.environ.get("BOTTLE_PLUGINS")
        chosen = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        failed: list[PluginRecord] = []

        def on_failure(_manager: Any, entry_point: Any, exc: BaseException) -> None:
            failed.append(_record(entry_point, PLUGIN, _failure(exc)))

        if chosen is None:
            manager = ExtensionManager(PLUGIN_GROUP, invoke_on_load=False, on_load_failure_callback=on_failure)
        else:
            manager = _filtered_manager(PLUGIN_GROUP, chosen, on_failure)
        for ext in manager:
            if ext.name in self.records:
                continue
            record = _record(ext.entry_point, PLUGIN)
            try:
                self.register(ext.plugin, ext.name, PLUGIN, record)
            except PluginError as exc:
                record.error = exc.message.split(": ", 1)[-1]
                failed.append(record)
        for record in failed:
            self.records[record.name] = record
            if strict:
                raise PluginError(record.name, record.distribution, f"failed to load: {record.error}",
                                  hint=f"uninstall {record.distribution or 'it'}, or leave it out with BOTTLE_PLUGINS")
        return failed

    def load_backend(self, name: str) -> None:
        """Load and register the backend ``name`` alone; unknown or unavailable is a clear error."""
        plugin, record = load_backend_plugin(name)
        reason = availability_of(plugin, name, record.distribution)
        if reason is not None:
            raise BackendUnavailable(f"backend {name!r} is installed but unavailable: {reason}")
        self.register(plugin, name, BACKEND, record)

    # -- calling ---------------------------------------------------------------

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a firstresult hook, turning a plugin's exception into a PluginError naming it."""
        hook = getattr(self.pm.hook, hook_name)
        try:
            return hook(**kwargs)
        except BottleError:
            raise
        except Exception as exc:
            name = self.backend or "?"
            record = self.records.get(name)
            raise PluginError(name, record.distribution if record else None, f"{hook_name} failed: {_failure(exc)}",
                              hint="run with --debug for the traceback") from exc

    def call_each(self, hook_name: str, *, before_plugins: Callable[[], None] | None = None,
                  **kwargs: Any) -> list[Any]:
        """Call every implementation of a hook: bottle's own, then the backend's, then the plugins'.

        ``before_plugins`` runs once, just before the first third-party implementation.
        """
        hook = getattr(self.pm.hook, hook_name)
        impls = sorted(hook.get_hookimpls(), key=lambda impl: _RANK[self._kind(impl.plugin_name)])
        results = []
        for impl in impls:
            if before_plugins is not None and self._kind(impl.plugin_name) == PLUGIN:
                before_plugins()
                before_plugins = None
            try:
                results.append(impl.function(*[kwargs[arg] for arg in impl.argnames]))
            except BottleError:
                raise
            except Exception as exc:
                record = self.records.get(impl.plugin_name)
                raise PluginError(impl.plugin_name, record.distribution if record else None,
                                  f"{hook_name} failed: {_failure(exc)}",
                                  hint="run with --debug for the traceback, or leave it out with BOTTLE_PLUGINS") from exc
        return results

    def _kind(self, name: str) -> str:
        record = self.records.get(name)
        return record.kind if record else PLUGIN


def _core_version() -> str:
    from . import __version__

    return __version__


def _filtered_manager(group: str, chosen: set[str], on_failure: Callable[..., None]) -> Any:
    from stevedore import NamedExtensionManager

    return NamedExtensionManager(group, names=sorted(chosen), invoke_on_load=False,
                                 on_load_failure_callback=on_failure)


def load_backend_plugin(name: str) -> tuple[object, PluginRecord]:
    """Load exactly one backend with stevedore's DriverManager."""
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    failures: list[tuple[Any, BaseException]] = []
    try:
        driver = DriverManager(BACKEND_GROUP, name, invoke_on_load=False,
                               on_load_failure_callback=lambda _m, ep, exc: failures.append((ep, exc)))
    except (NoMatches, RuntimeError):
        if not failures:
            raise unknown_backend(name) from None
        entry_point, exc = failures[0]
        record = _record(entry_point, BACKEND, _failure(exc))
        raise PluginError(name, record.distribution, f"failed to load: {record.error}",
                          hint=f"reinstall {record.distribution or 'it'}, or pick another backend with --backend") from exc
    return driver.driver, _record(driver.extensions[0].entry_point, BACKEND)


def entry_points(group: str) -> dict[str, Any]:
    """Entry points of ``group`` by name, with their distributions, without loading any."""
    from importlib.metadata import entry_points as installed

    return {ep.name: ep for ep in installed(group=group)}


def backend_entry_points() -> dict[str, Any]:
    """Installed backends by name, without loading any of them."""
    return entry_points(BACKEND_GROUP)


def unknown_backend(name: str) -> UsageError:
    installed = ", ".join(sorted(backend_entry_points())) or "none"
    dist = KNOWN_BACKENDS.get(name, f"bottle-{name}")
    return UsageError(f"unknown backend {name!r} (installed: {installed})", hint=f"install it with: pip install {dist}")


def availability_of(plugin: object, name: str, distribution: str | None) -> str | None:
    """Ask one backend, on a manager of its own, whether it can work here."""
    pm = new_manager()
    pm.register(plugin, name=name)
    try:
        return pm.hook.backend_availability()
    except Exception as exc:
        return f"its availability check failed ({_failure(exc)}); reinstall {distribution or name}"


def select_backend(option: str | None, bottle_field: str | None) -> str:
    """``--backend``, then ``BOTTLE_BACKEND``, then the bottle's ``backend`` field, then docker."""
    return option or os.environ.get("BOTTLE_BACKEND") or bottle_field or DEFAULT_BACKEND


def describe_backends() -> list[dict[str, Any]]:
    """Every installed backend with distribution, version and availability (loads each one)."""
    rows = []
    for name in sorted(backend_entry_points()):
        try:
            plugin, record = load_backend_plugin(name)
        except PluginError as exc:
            record, reason = PluginRecord(name, BACKEND, exc.distribution), exc.render()
        else:
            reason = availability_of(plugin, name, record.distribution)
        rows.append({"name": name, "distribution": record.distribution, "version": record.version,
                     "available": reason is None, "reason": reason})
    return rows
