"""The plugin manager: call order, failures named by plugin and distribution, hook checks, discovery."""

from __future__ import annotations

import inspect
import sys
import textwrap
from pathlib import Path

import pytest

from bottle_core import hookimpl, hookspecs
from bottle_core.errors import PluginError
from bottle_core.plan import NetworkPlan, base_plan, stage
from bottle_core.plugins import BACKEND, CORE, PLUGIN, PluginRecord, Plugins
from bottle_core.sandbox import Bottle, ExecResult
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec


class RecordingBottle(Bottle):
    """A Bottle that performs nothing and writes what it was asked to do into a shared log."""

    def __init__(self, plan, log: list[str]):
        super().__init__(plan)
        self.log = log

    def exec(self, command, *, user=None, env=None, workdir=None, stdin=None):
        self.log.append(f"core:exec {command[0] if isinstance(command, list) else command}")
        return ExecResult(0, b"", b"")

    def run(self, argv, *, tty, user=None, env=None, workdir=None):
        return 0

    def copy_in(self, tar_stream, dest):
        self.log.append(f"core:copy_in {dest}")

    def copy_out(self, src):
        return b""


def make_plan(manifest_path: Path, tmp_path: Path):
    spec = BottleSpec(manifest=Manifest.load(manifest_path), agent="demo", copy_cwd=False, cwd=tmp_path)
    network = NetworkPlan(name="net", subnet="10.99.0.0/24", bundle_ip="10.99.0.2", outbound="out")
    plan = base_plan(spec, backend="fake", stage_dir=tmp_path / "state", network=network, images={})
    stage(plan, spec.manifest.prompt_text("demo"))
    return plan


class Provisioner:
    """A plugin whose provision_prompt notes its own name in the log."""

    def __init__(self, name: str, log: list[str]):
        self.name = name
        self.log = log

    @hookimpl
    def provision_prompt(self, plan, bottle):
        self.log.append(self.name)


def test_provision_hooks_run_bottles_defaults_then_backend_then_plugins(bottle_plugins, manifest_factory, tmp_path):
    log: list[str] = []
    plan = make_plan(manifest_factory(), tmp_path)
    # Registered in the "wrong" order on purpose: the call order must not depend on it.
    bottle_plugins.register(Provisioner("plugin-a", log), "a", PLUGIN)
    bottle_plugins.register(Provisioner("backend", log), "fake", BACKEND)
    bottle_plugins.register(Provisioner("plugin-b", log), "b", PLUGIN)

    bottle_plugins.call_each("provision_prompt", plan=plan, bottle=RecordingBottle(plan, log))

    core_steps = [entry for entry in log if entry.startswith("core:")]
    assert core_steps, "bottle's own provision_prompt did not run"
    assert log == core_steps + ["backend", "plugin-a", "plugin-b"]
    # The prompt's folder travels in the same tar stream, unpacked in the agent's home: one call.
    assert core_steps == [f"core:copy_in {plan.guest.home}"]


def test_fixture_starts_with_only_bottles_defaults(bottle_plugins):
    assert {name: rec.kind for name, rec in bottle_plugins.records.items()} == {
        "bottle-core": CORE, "bottle-core.claude-state": CORE, "bottle-ready": CORE}
    assert set(bottle_plugins.records["bottle-core"].hooks) == {"provision_ca", "provision_git", "provision_prompt",
                                                                "provision_skills", "provision_supervise"}
    assert bottle_plugins.records["bottle-core.claude-state"].hooks == ["provision_claude_state"]


def test_fixture_unregisters_what_a_test_registered(bottle_plugins):
    obj = bottle_plugins.register(Provisioner("x", []), "x", BACKEND)
    assert bottle_plugins.pm.is_registered(obj) and bottle_plugins.backend == "x"
    bottle_plugins.unregister_all()
    assert not bottle_plugins.pm.is_registered(obj)
    assert "x" not in bottle_plugins.records and bottle_plugins.backend is None
    assert bottle_plugins.pm.has_plugin("bottle-core")


class Exploding:
    @hookimpl
    def provision_ca(self, plan, bottle):
        raise RuntimeError("the greeting machine is broken")


def test_plugin_raising_in_a_hook_is_a_plugin_error_naming_it_and_its_distribution(bottle_plugins):
    bottle_plugins.register(Exploding(), "boom", PLUGIN, PluginRecord("boom", PLUGIN, "bottle-boom", "1.2.3"))

    with pytest.raises(PluginError) as caught:
        bottle_plugins.call_each("provision_ca", plan=object(), bottle=RecordingBottle(object(), []))

    error = caught.value
    assert (error.plugin, error.distribution) == ("boom", "bottle-boom")
    line = error.render()
    assert "'boom'" in line and "bottle-boom" in line
    assert "provision_ca" in line and "the greeting machine is broken" in line
    assert "\n" not in line
    assert isinstance(error.__cause__, RuntimeError), "the original exception is kept for --debug"


class FailingBackend:
    @hookimpl
    def prepare(self, spec, stage_dir):
        raise OSError("no subnet left")


def test_backend_raising_in_a_firstresult_hook_is_named_too(bottle_plugins):
    bottle_plugins.register(FailingBackend(), "fake", BACKEND, PluginRecord("fake", BACKEND, "bottle-fake", "0.1"))

    with pytest.raises(PluginError) as caught:
        bottle_plugins.call_first("prepare", spec=object(), stage_dir=Path("."))

    assert caught.value.plugin == "fake" and caught.value.distribution == "bottle-fake"
    assert "prepare failed: OSError: no subnet left" in caught.value.render()


class Misspelt:
    @hookimpl
    def provision_promt(self, plan, bottle):  # sic: not a bottle hook
        pass


def test_a_misspelt_hookimpl_is_refused(bottle_plugins):
    with pytest.raises(PluginError) as caught:
        bottle_plugins.register(Misspelt(), "typo", PLUGIN, PluginRecord("typo", PLUGIN, "bottle-typo", "0.1"))

    assert "provision_promt" in caught.value.render()
    assert caught.value.distribution == "bottle-typo"
    assert not bottle_plugins.pm.has_plugin("typo"), "a refused plugin must not stay registered"
    assert "typo" not in bottle_plugins.records


def test_an_unknown_argument_name_is_refused(bottle_plugins):
    class WrongArgument:
        @hookimpl
        def provision_git(self, plan, sandbox):
            pass

    with pytest.raises(PluginError):
        bottle_plugins.register(WrongArgument(), "wrong-arg", PLUGIN)


def hookspec_functions():
    marker = f"{hookspecs.PROJECT}_spec"
    return [fn for _, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)]


def test_hookspecs_are_found():
    names = {fn.__name__ for fn in hookspec_functions()}
    assert {"prepare", "launch", "provision_supervise", "register_commands"} <= names
    assert set(hookspecs.PROVISION_ORDER) <= names


@pytest.mark.parametrize("spec", hookspec_functions(), ids=lambda fn: fn.__name__)
def test_every_hookspec_is_documented(spec):
    doc = inspect.getdoc(spec)
    assert doc and doc.splitlines()[0].strip(), f"{spec.__name__} has no summary line"
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"{spec.__name__}: no ':param {param}:' in its docstring"
    options = getattr(spec, f"{hookspecs.PROJECT}_spec")
    if options.get("firstresult"):
        assert "Stops at the first non-None result" in doc, f"{spec.__name__} is firstresult but does not say so"
        assert ":return:" in doc, f"{spec.__name__} is firstresult but does not document its result"
    else:
        assert "Every implementation runs" in doc, f"{spec.__name__} does not say who runs"


def test_every_hook_has_a_place_in_the_plugin_guide():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    missing = [fn.__name__ for fn in hookspec_functions() if f"`{fn.__name__}" not in guide]
    assert missing == [], f"docs/plugins.md does not describe: {', '.join(missing)}"


# -- discovery from installed distributions -------------------------------------------------------


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A folder on sys.path where tests install fake distributions (dist-info + module), nothing else."""
    from stevedore import ExtensionManager

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    # stevedore keeps the entry points of a group per process; each test needs its own view.
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    added: list[str] = []

    def install(dist: str, entry: str, module: str, source: str | None) -> None:
        info = site / f"{dist.replace('-', '_')}-0.4.2.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.4.2\n")
        (info / "entry_points.txt").write_text(f"[bottle.plugins]\n{entry} = {module}\n")
        if source is not None:
            (site / f"{module}.py").write_text(textwrap.dedent(source))
        added.append(module)

    yield install
    for module in added:
        sys.modules.pop(module, None)


GOOD_PLUGIN = """
    from bottle_core import hookimpl

    @hookimpl
    def provision_git(plan, bottle):
        pass
"""


def test_installed_plugins_are_discovered_with_their_distribution(fake_site, monkeypatch):
    monkeypatch.delenv("BOTTLE_PLUGINS", raising=False)
    fake_site("bottle-good", "good", "bottle_test_good_plugin", GOOD_PLUGIN)
    plugins = Plugins()

    assert plugins.load_plugins(strict=False) == []

    record = plugins.records["good"]
    assert (record.distribution, record.version, record.kind) == ("bottle-good", "0.4.2", PLUGIN)
    assert record.hooks == ["provision_git"]


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_still_load(fake_site, monkeypatch):
    monkeypatch.delenv("BOTTLE_PLUGINS", raising=False)
    fake_site("bottle-good", "good", "bottle_test_good_plugin", GOOD_PLUGIN)
    fake_site("bottle-broken", "broken", "bottle_test_missing_module", None)
    plugins = Plugins()

    failed = plugins.load_plugins(strict=False)

    assert [(r.name, r.distribution) for r in failed] == [("broken", "bottle-broken")]
    assert "ModuleNotFoundError" in failed[0].error
    assert plugins.records["good"].error is None


def test_strict_plugins_makes_a_load_failure_fatal(fake_site, monkeypatch):
    monkeypatch.delenv("BOTTLE_PLUGINS", raising=False)
    monkeypatch.setenv("BOTTLE_STRICT_PLUGINS", "1")
    fake_site("bottle-broken", "broken", "bottle_test_missing_module", None)

    with pytest.raises(PluginError) as caught:
        Plugins().load_plugins()

    assert caught.value.plugin == "broken" and caught.value.distribution == "bottle-broken"
    assert "BOTTLE_PLUGINS" in caught.value.render()


@pytest.mark.parametrize(("wanted", "loaded"), [("good", {"good"}), ("", set()), ("other, good", {"good"})])
def test_bottle_plugins_names_exactly_which_plugins_load(fake_site, monkeypatch, wanted, loaded):
    fake_site("bottle-good", "good", "bottle_test_good_plugin", GOOD_PLUGIN)
    fake_site("bottle-broken", "broken", "bottle_test_missing_module", None)
    monkeypatch.setenv("BOTTLE_PLUGINS", wanted)
    plugins = Plugins()

    failed = plugins.load_plugins(strict=True)

    assert failed == []
    assert {name for name, rec in plugins.records.items() if rec.error is None} == loaded
    assert "broken" not in plugins.records


class ReadyLoggingBottle(RecordingBottle):
    def ready(self):
        self.log.append("ready")


def test_the_bundle_is_ready_between_the_backends_hook_and_the_plugins(bottle_plugins, manifest_factory, tmp_path):
    log: list[str] = []
    plan = make_plan(manifest_factory(), tmp_path)
    bottle_plugins.register(Provisioner("plugin-a", log), "a", PLUGIN)
    bottle_plugins.register(Provisioner("backend", log), "fake", BACKEND)
    bottle_plugins.register(Provisioner("plugin-b", log), "b", PLUGIN)

    bottle_plugins.call_each("provision_prompt", plan=plan, bottle=ReadyLoggingBottle(plan, log))

    assert [entry for entry in log if not entry.startswith("core:")] == ["backend", "ready", "plugin-a", "plugin-b"]


def test_without_a_plugin_the_hook_does_not_wait_for_the_bundle(bottle_plugins, manifest_factory, tmp_path):
    log: list[str] = []
    plan = make_plan(manifest_factory(), tmp_path)
    bottle_plugins.register(Provisioner("backend", log), "fake", BACKEND)

    bottle_plugins.call_each("provision_prompt", plan=plan, bottle=ReadyLoggingBottle(plan, log))

    assert "ready" not in log and "backend" in log


class EagerPlugin:
    """A plugin asking to run first: it still runs after the backend, with the bundle up."""

    def __init__(self, log):
        self.log = log

    @hookimpl(tryfirst=True)
    def provision_prompt(self, plan, bottle):
        self.log.append("eager")


def test_a_plugin_cannot_jump_ahead_of_the_bundles_readiness(bottle_plugins, manifest_factory, tmp_path):
    log: list[str] = []
    plan = make_plan(manifest_factory(), tmp_path)
    bottle_plugins.register(EagerPlugin(log), "eager", PLUGIN)
    bottle_plugins.register(Provisioner("backend", log), "fake", BACKEND)

    bottle_plugins.call_each("provision_prompt", plan=plan, bottle=ReadyLoggingBottle(plan, log))

    assert [entry for entry in log if not entry.startswith("core:")] == ["backend", "ready", "eager"]


class QuietBackend:
    @hookimpl
    def list_bottles(self):
        return []


def test_a_firstresult_hook_nobody_answers_says_the_backend_does_not_support_it(bottle_plugins):
    from bottle_core.errors import Unsupported

    bottle_plugins.register(QuietBackend(), "quiet", BACKEND)
    assert bottle_plugins.call_first("list_bottles") == []  # an empty answer is an answer
    with pytest.raises(Unsupported) as caught:
        bottle_plugins.call_first("build_images", force=False)
    assert caught.value.render().startswith("backend 'quiet' does not support build_images: build the backend's images (`bottle image build`) (see")
    assert "\n" not in caught.value.render()


class HelperRaises:
    """A plugin whose hook fails deep in a helper: the error still names the plugin, not the backend."""

    @hookimpl
    def provision_ca(self, plan, bottle):
        self._helper()

    def _helper(self):
        raise KeyError("remote")


def test_the_error_names_the_plugin_that_failed_not_the_backend(bottle_plugins):
    bottle_plugins.register(Provisioner("backend", []), "fake", BACKEND)
    bottle_plugins.register(HelperRaises(), "gitty", PLUGIN, PluginRecord("gitty", PLUGIN, "bottle-gitty", "1"))
    with pytest.raises(PluginError) as caught:
        bottle_plugins.call_each("provision_ca", plan=object(), bottle=RecordingBottle(object(), []))
    assert caught.value.plugin == "gitty" and "bottle-gitty" in caught.value.render()


def test_tracing_prints_each_hook_call_its_implementations_and_its_time(manifest_factory, tmp_path, monkeypatch,
                                                                        capsys):
    from bottle_core.testing import FixturePlugins

    monkeypatch.setenv("BOTTLE_TRACE_PLUGINS", "1")
    plugins = FixturePlugins()
    plugins.load_core()
    plugins.register(Provisioner("backend", []), "fake", BACKEND)
    plugins.register(Provisioner("plugin-a", []), "a", PLUGIN)
    plan = make_plan(manifest_factory(), tmp_path)
    plugins.call_each("provision_prompt", plan=plan, bottle=ReadyLoggingBottle(plan, []))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "bottle: trace: provision_prompt(plan, bottle) -> bottle-core[first], fake, bottle-ready, a[last]"
    assert lines[1].startswith("bottle: trace: provision_prompt done in ") and lines[1].endswith(" ms")
