"""session.running: launch, then the provision hooks in order, readiness before any plugin, teardown whatever happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from bottle_core import hookimpl, session
from bottle_core.errors import PluginError
from bottle_core.hookspecs import PROVISION_ORDER
from bottle_core.plan import FINISHED
from bottle_core.testing import FakeBackend


class Recorder:
    """A plugin (or backend part) noting each provision hook it sees, with whether the bundle was ready then."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def _note(self, hook, bottle):
        self.log.append((self.name, hook, bottle.is_ready))

    @hookimpl
    def provision_ca(self, bottle):
        self._note("ca", bottle)

    @hookimpl
    def provision_claude_state(self, bottle):
        self._note("claude_state", bottle)

    @hookimpl
    def provision_git(self, bottle):
        self._note("git", bottle)

    @hookimpl
    def provision_skills(self, bottle):
        self._note("skills", bottle)

    @hookimpl
    def provision_prompt(self, bottle):
        self._note("prompt", bottle)

    @hookimpl
    def provision_supervise(self, bottle):
        self._note("supervise", bottle)


@pytest.fixture
def backend(bottle_plugins):
    log: list = []
    fake = FakeBackend(log)
    bottle_plugins.register(fake, "fake", "backend")
    bottle_plugins.register(Recorder("backend", log), "fake-provision", "backend")
    return fake


def test_hooks_run_in_order_and_plugins_only_once_the_bundle_is_ready(bottle_plugins, backend, plan_factory):
    log = backend.events
    bottle_plugins.register(Recorder("plugin", log), "third-party", "plugin")
    plan = plan_factory()

    with session.running(bottle_plugins, plan) as bottle:
        assert bottle.is_ready  # the caller gets a bottle whose way out is up
        log.append("work")

    hooks = [entry for entry in log if isinstance(entry, tuple) and entry[0] in ("backend", "plugin")]
    expected = [(who, hook.removeprefix("provision_")) for hook in PROVISION_ORDER for who in ("backend", "plugin")]
    assert [(who, hook) for who, hook, _ in hooks] == expected
    assert all(ready for who, _, ready in hooks if who == "plugin"), "a plugin ran before bottle.ready()"
    assert log[0] == "launch" and log[-2:] == ["work", "teardown"]
    # bottle's own prompt provisioning ran too, through the same handle.
    assert bottle.files[plan.guest.prompt_file] == b"You are demo. Be brief."


def test_without_third_party_hooks_provisioning_does_not_wait_for_the_bundle(bottle_plugins, backend, plan_factory):
    with session.running(bottle_plugins, plan_factory()):
        pass
    hooks = [entry for entry in backend.events if isinstance(entry, tuple) and entry[0] == "backend"]
    assert hooks and not any(ready for _, _, ready in hooks)


class Failing:
    @hookimpl
    def provision_skills(self, bottle):
        raise RuntimeError("no room for skills")


def test_a_failing_hook_tears_the_bottle_down_and_names_the_plugin(bottle_plugins, backend, plan_factory):
    bottle_plugins.register(Failing(), "skilly", "plugin")
    plan = plan_factory()

    with pytest.raises(PluginError) as caught:
        with session.running(bottle_plugins, plan):
            pytest.fail("the caller's block must not run after a failed provision hook")

    assert caught.value.plugin == "skilly" and "no room for skills" in caught.value.render()
    assert backend.events[-1] == "teardown"
    assert (Path(plan.state_dir) / FINISHED).exists() and not Path(plan.prompt_file).exists()


def test_an_error_in_the_callers_block_still_tears_down(bottle_plugins, backend, plan_factory):
    with pytest.raises(KeyboardInterrupt):
        with session.running(bottle_plugins, plan_factory()):
            raise KeyboardInterrupt
    assert backend.events[-1] == "teardown"


def test_a_failed_launch_still_marks_the_state_finished(bottle_plugins, backend, plan_factory):
    from bottle_core.errors import BottleRuntimeError

    backend.fail_launch = BottleRuntimeError("engine said no")
    plan = plan_factory()
    with pytest.raises(BottleRuntimeError):
        with session.running(bottle_plugins, plan):
            pass
    assert backend.events == ["launch", "teardown"]
    assert (Path(plan.state_dir) / FINISHED).exists()


def test_provisioning_uses_the_plan_the_launch_handed_back(bottle_plugins, plan_factory):
    """A backend that had to move something at launch hands a new Plan on the handle; provisioners see that one."""
    seen = []

    class Moving(FakeBackend):
        @hookimpl
        def launch(self, plan):
            return super().launch(plan.model_copy(update={"slug": plan.slug + "-moved"}))

    class Watcher:
        @hookimpl
        def provision_ca(self, plan):
            seen.append(plan.slug)

    bottle_plugins.register(Moving(), "fake", "backend")
    bottle_plugins.register(Watcher(), "watcher", "plugin")
    plan = plan_factory()
    with session.running(bottle_plugins, plan):
        pass
    assert seen == [plan.slug + "-moved"]
