"""Plugin discovery and calling: stevedore finds and loads, pluggy calls.

Two entry-point groups:

* ``bottle.backends`` -- one of many: only the selected backend is loaded and
  registered, so a hook call never reaches an unselected backend.
* ``bottle.plugins`` -- all of many: every provisioner is loaded (unless
  ``BOTTLE_PLUGINS`` names exactly which), each in its own try, so one broken
  plugin is reported by name and does not take the tool down
  (``BOTTLE_STRICT_PLUGINS=1`` makes it fatal).

Call order of the provision hooks, by pluggy's own means: bottle's defaults
are ``tryfirst``; the backend's are plain; every third-party plugin's are made
``trylast`` when registered, and a plain implementation registered before the
backend (:class:`ReadyBarrier`) calls ``bottle.ready()`` between the two, so a
plugin always finds the bundle up. Among plugins, pluggy's rule holds: the one
registered last runs first. Hook wrappers and hook-call monitoring see every
call (``BOTTLE_TRACE_PLUGINS=1`` prints them).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs, settings
from .errors import BackendUnavailable, BottleError, PluginError, Unsupported, UsageError

BACKEND_GROUP = "bottle.backends"
PLUGIN_GROUP = "bottle.plugins"
DEFAULT_BACKEND = "docker"
#: Distributions that provide the backends bottle knows of, for "install X" hints.
KNOWN_BACKENDS = {"docker": "bottle-docker", "smol": "bottle-smol"}

CORE, BACKEND, PLUGIN = "core", "backend", "plugin"


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


class _Manager(pluggy.PluginManager):
    """pluggy's manager, placing a third-party plugin's provision hooks after the backend's (``trylast``)."""

    registering_plugin = False

    def parse_hookimpl_opts(self, plugin: object, name: str):  # type: ignore[override]
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and self.registering_plugin and name in hookspecs.PROVISION_ORDER:
            opts = {**opts, "tryfirst": False, "trylast": True}
        return opts


def new_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows bottle's hookspecs and nothing else."""
    pm = _Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


class ReadyBarrier:
    """Calls ``bottle.ready()`` after the backend's provision hook and before any plugin's.

    Registered before the backend, with plain implementations: pluggy runs it
    after the backend's (plain, registered later) and before the plugins'
    (``trylast``). When no plugin implements a hook it waits for nothing, so
    bottle's and the backend's provisioning keep overlapping the bundle's start.
    """

    NAME = "bottle-ready"

    def __init__(self, plugins: Plugins):
        self.plugins = plugins

    def _ready_if_plugins_follow(self, hook_name: str, bottle: Any) -> None:
        impls = getattr(self.plugins.pm.hook, hook_name).get_hookimpls()
        if any(self.plugins.kind_of(impl.plugin_name) == PLUGIN for impl in impls):
            bottle.ready()

    @hookspecs.hookimpl
    def provision_ca(self, bottle):
        self._ready_if_plugins_follow("provision_ca", bottle)

    @hookspecs.hookimpl
    def provision_claude_state(self, bottle):
        self._ready_if_plugins_follow("provision_claude_state", bottle)

    @hookspecs.hookimpl
    def provision_git(self, bottle):
        self._ready_if_plugins_follow("provision_git", bottle)

    @hookspecs.hookimpl
    def provision_skills(self, bottle):
        self._ready_if_plugins_follow("provision_skills", bottle)

    @hookspecs.hookimpl
    def provision_prompt(self, bottle):
        self._ready_if_plugins_follow("provision_prompt", bottle)

    @hookspecs.hookimpl
    def provision_supervise(self, bottle):
        self._ready_if_plugins_follow("provision_supervise", bottle)


def _trace_before(hook_name: str, impls: list, kwargs: dict) -> None:
    names = ", ".join(f"{impl.plugin_name}{'[first]' if impl.tryfirst else ''}{'[last]' if impl.trylast else ''}"
                      for impl in reversed(impls)) or "none"
    sys.stderr.write(f"bottle: trace: {hook_name}({', '.join(kwargs)}) -> {names}\n")
    _trace_starts.append(time.perf_counter())


def _trace_after(outcome: Any, hook_name: str, impls: list, kwargs: dict) -> None:
    took = time.perf_counter() - _trace_starts.pop()
    failed = f" raised {type(outcome.exception).__name__}" if outcome.exception is not None else ""
    sys.stderr.write(f"bottle: trace: {hook_name} done in {took * 1000:.1f} ms{failed}\n")


_trace_starts: list[float] = []


class Plugins:
    """One pluggy manager, and the record of every plugin it holds."""

    def __init__(self) -> None:
        self.pm = new_manager()
        self.records: dict[str, PluginRecord] = {}
        self.backend: str | None = None
        if settings.current().trace_plugins:
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)

    # -- registration ----------------------------------------------------------

    def register(self, plugin: object, name: str, kind: str, record: PluginRecord | None = None) -> None:
        """Register a plugin object (tests use this directly) and check its hook names."""
        try:
            # register() refuses arguments a hook does not have; check_pending() unknown hook names.
            self.pm.registering_plugin = kind == PLUGIN
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            rec = record or PluginRecord(name, kind)
            raise PluginError(name, rec.distribution, f"does not match bottle's hooks: {' '.join(str(exc).split())}",
                              hint="fix the hook's name or arguments, or upgrade bottle-core") from None
        finally:
            self.pm.registering_plugin = False
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
        # Before any backend is registered, so pluggy runs it after the backend's implementations.
        self.register(ReadyBarrier(self), ReadyBarrier.NAME, CORE,
                      PluginRecord(ReadyBarrier.NAME, CORE, "bottle-core", _core_version()))

    def load_plugins(self, *, strict: bool | None = None) -> list[PluginRecord]:
        """Load every ``bottle.plugins`` entry point (or those named in ``BOTTLE_PLUGINS``)."""
        from stevedore import ExtensionManager

        config = settings.current()
        strict = config.strict_plugins if strict is None else strict
        chosen = None if config.plugins is None else set(config.plugins)
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

    def load_backend(self, name: str, *, need_available: bool = True) -> None:
        """Load and register the backend ``name`` alone; unknown or (when ``need_available``) unavailable is a clear error.

        Managing what a backend left (``bottle ls``/``stop``/``gc``) does not
        need it to be able to launch: a host that lost its hypervisor still
        has machines to remove.
        """
        plugin, record = load_backend_plugin(name)
        reason = availability_of(plugin, name, record.distribution) if need_available else None
        if reason is not None:
            raise BackendUnavailable(f"backend {name!r} is installed but unavailable: {reason}")
        self.register(plugin, name, BACKEND, record)

    # -- calling ---------------------------------------------------------------

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a firstresult hook; nobody answering means the backend does not support it."""
        result = self._call(hook_name, kwargs)
        if result is None:
            summary = (getattr(hookspecs, hook_name).__doc__ or "").strip().splitlines()[0]
            summary = summary.replace("``", "`").split(", ")[0].rstrip(".")
            raise Unsupported(f"backend {self.backend or '(none)'!r} does not support {hook_name}: "
                              f"{summary[0].lower() + summary[1:]}",
                              hint="see `bottle backends`, or choose another backend with --backend")
        return result

    def call_each(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of a hook, in pluggy's order (see the module's docstring)."""
        return self._call(hook_name, kwargs)

    def _call(self, hook_name: str, kwargs: dict[str, Any]) -> Any:
        hook = getattr(self.pm.hook, hook_name)
        try:
            return hook(**kwargs)
        except BottleError:
            raise
        except Exception as exc:
            name = _failing_plugin(hook, exc) or self.backend or "?"
            record = self.records.get(name)
            hint = "run with --debug for the traceback"
            if self.kind_of(name) == PLUGIN:
                hint += ", or leave it out with BOTTLE_PLUGINS"
            raise PluginError(name, record.distribution if record else None, f"{hook_name} failed: {_failure(exc)}",
                              hint=hint) from exc

    def kind_of(self, name: str) -> str:
        """``core``, ``backend`` or ``plugin``: what the plugin registered as ``name`` is."""
        record = self.records.get(name)
        return record.kind if record else PLUGIN


def _failing_plugin(hook: Any, exc: BaseException) -> str | None:
    """The plugin whose implementation raised ``exc``: the outermost traceback frame that is a hook implementation."""
    owners = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in hook.get_hookimpls()}
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in owners:
            return owners[tb.tb_frame.f_code]
        tb = tb.tb_next
    return None


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


def backend_hooks(plugin: object, name: str) -> Any:
    """The hooks of one backend alone, on a manager of its own (no other backend or plugin answers)."""
    pm = new_manager()
    pm.register(plugin, name=name)
    return pm.hook


def availability_of(plugin: object, name: str, distribution: str | None) -> str | None:
    """Ask one backend, on a manager of its own, whether it can work here."""
    try:
        return backend_hooks(plugin, name).backend_availability()
    except Exception as exc:
        return f"its availability check failed ({_failure(exc)}); reinstall {distribution or name}"


def select_backend(option: str | None, bottle_field: str | None) -> str:
    """``--backend``, then ``BOTTLE_BACKEND``, then the bottle's ``backend`` field, then docker."""
    return option or settings.current().backend or bottle_field or DEFAULT_BACKEND


def settings_of(plugin: object, name: str) -> list[settings.BackendSetting]:
    """The ``BOTTLE_*`` variables one backend declares (``backend_settings``), on a manager of its own."""
    return list(backend_hooks(plugin, name).backend_settings() or [])


def describe_backends() -> list[dict[str, Any]]:
    """Every installed backend with distribution, version, availability and settings (loads each one)."""
    rows = []
    for name in sorted(backend_entry_points()):
        declared: list[settings.BackendSetting] = []
        try:
            plugin, record = load_backend_plugin(name)
        except PluginError as exc:
            record, reason = PluginRecord(name, BACKEND, exc.distribution), exc.render()
        else:
            reason = availability_of(plugin, name, record.distribution)
            declared = settings_of(plugin, name)
        rows.append({"name": name, "distribution": record.distribution, "version": record.version,
                     "available": reason is None, "reason": reason,
                     "settings": [{"variable": s.variable, "meaning": s.meaning} for s in declared]})
    return rows


def diagnose_backends(refresh: bool = False) -> list[dict[str, Any]]:
    """``bottle doctor``: each installed backend's own real check (``backend_doctor``), or its availability."""
    reports = []
    for name in sorted(backend_entry_points()):
        try:
            plugin, record = load_backend_plugin(name)
        except PluginError as exc:
            reports.append({"name": name, "distribution": exc.distribution, "ok": False, "reason": exc.render(),
                            "checks": [{"name": "load", "ok": False, "detail": exc.render()}]})
            continue
        try:
            report = backend_hooks(plugin, name).backend_doctor(refresh=refresh)
        except Exception as exc:
            report = {"ok": False, "reason": f"its doctor failed ({_failure(exc)})", "checks": []}
        if report is None:  # a backend without a doctor: its availability is all there is to say
            reason = availability_of(plugin, name, record.distribution)
            report = {"ok": reason is None, "reason": reason,
                      "checks": [{"name": "availability", "ok": reason is None, "detail": reason}]}
        reports.append({"name": name, "distribution": record.distribution, "version": record.version, **report})
    return reports
