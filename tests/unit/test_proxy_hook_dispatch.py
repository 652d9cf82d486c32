"""``hook_dispatch``: mitmproxy's events reach exactly the addons that handle them, also after the addons change.

mitmproxy is installed in the bundle image, not on the host, so its
``addonmanager`` is stood in for here by the few parts ``hook_dispatch``
uses, written as mitmproxy 8.1 has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import types
from dataclasses import dataclass

import pytest


class AddonHalt(Exception):
    pass


class AddonManagerError(Exception):
    pass


def traverse(chain):
    for a in chain:
        yield a
        if hasattr(a, "addons"):
            yield from traverse(a.addons)


ERRORS: list[str] = []


@contextlib.contextmanager
def safecall():
    try:
        yield
    except AddonHalt:
        raise
    except Exception as exc:  # mitmproxy logs the error and goes on with the next addon
        ERRORS.append(str(exc))


class AddonManager:
    def __init__(self):
        self.chain = []

    def register(self, addon):
        return addon

    def add(self, *addons):
        for addon in addons:
            self.chain.append(self.register(addon))

    def remove(self, addon):
        self.chain = [a for a in self.chain if a is not addon]

    def clear(self):
        self.chain = []

    def trigger(self, event):
        pass

    async def trigger_event(self, event):
        raise AssertionError("mitmproxy's own dispatch: replaced by install()")


@dataclass
class Event:
    name: str
    flow: object = None

    def args(self):
        return [self.flow]


@pytest.fixture
def dispatch(monkeypatch):
    package = types.ModuleType("mitmproxy")
    manager = types.ModuleType("mitmproxy.addonmanager")
    manager.traverse, manager.safecall, manager.AddonManager = traverse, safecall, AddonManager
    errors = types.ModuleType("mitmproxy.exceptions")
    errors.AddonHalt, errors.AddonManagerError = AddonHalt, AddonManagerError
    package.addonmanager, package.exceptions = manager, errors
    for name, module in (("mitmproxy", package), ("mitmproxy.addonmanager", manager),
                         ("mitmproxy.exceptions", errors)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "bottle_core.bundle.image.hook_dispatch", raising=False)
    module = importlib.import_module("bottle_core.bundle.image.hook_dispatch")
    module.install()
    ERRORS.clear()
    yield module
    sys.modules.pop("bottle_core.bundle.image.hook_dispatch", None)


class Recorder:
    """An addon that notes each ``request`` it gets in a shared list."""

    def __init__(self, name, seen, fail=None):
        self.name, self.seen, self.fail = name, seen, fail

    def request(self, flow):
        self.seen.append(self.name)
        if self.fail:
            raise self.fail


class Silent:
    """An addon with no handler for ``request`` (most of mitmproxy's own)."""

    def response(self, flow):
        raise AssertionError("never called for a request")


def fire(manager, name="request"):
    asyncio.run(manager.trigger_event(Event(name, object())))


def test_only_the_addons_that_handle_an_event_get_it_in_order(dispatch):
    seen = []
    parent = Silent()
    parent.addons = [Recorder("child", seen)]
    manager = AddonManager()
    manager.add(Recorder("a", seen), Silent(), parent, Recorder("b", seen))
    fire(manager)
    fire(manager, "update")  # handled by none
    assert seen == ["a", "child", "b"]


def test_an_error_is_logged_and_the_next_addon_runs_and_a_halt_stops_the_event(dispatch):
    seen = []
    manager = AddonManager()
    manager.add(Recorder("a", seen, fail=ValueError("broken")), Recorder("b", seen))
    fire(manager)
    assert seen == ["a", "b"] and ERRORS == ["broken"]
    seen.clear()
    manager.add(Recorder("c", seen))
    manager.chain.insert(0, Recorder("halt", seen, fail=AddonHalt()))
    fire(manager)
    assert seen == ["halt"]


def test_an_async_handler_is_awaited(dispatch):
    seen = []

    class Async:
        async def request(self, flow):
            await asyncio.sleep(0)
            seen.append("async")

    manager = AddonManager()
    manager.add(Async(), Recorder("after", seen))
    fire(manager)
    assert seen == ["async", "after"]


def test_an_addon_added_removed_or_replaced_is_seen_at_the_next_event(dispatch):
    seen = []
    manager = AddonManager()
    first = Recorder("first", seen)
    manager.add(first)
    fire(manager)
    manager.add(Recorder("added", seen))  # register, then the chain grows
    fire(manager)
    manager.remove(first)
    fire(manager)
    manager.chain = [Recorder("replaced", seen)]
    fire(manager)
    manager.clear()
    fire(manager)
    assert seen == ["first", "first", "added", "added", "replaced"]


def test_a_script_reloaded_or_reordered_is_seen_at_the_next_event(dispatch):
    seen = []
    loader = Silent()
    one, two = Recorder("one", seen), Recorder("two", seen)
    loader.addons = [one]
    manager = AddonManager()
    manager.add(loader)
    fire(manager)
    loader.addons = [one, two]  # a script loaded: mitmproxy registers it
    manager.register(two)
    fire(manager)
    loader.addons = [two, one]  # the scripts reordered by an option change: its configure event
    manager.trigger(Event("configure"))
    fire(manager)
    assert seen == ["one", "one", "two", "two", "one"]


def test_a_log_line_keeps_the_table(dispatch):
    manager = AddonManager()
    manager.add(Recorder("a", []))
    fire(manager)
    manager.trigger(Event("add_log"))
    assert dispatch.TABLE in manager.__dict__
    manager.trigger(Event("configure"))
    assert dispatch.TABLE not in manager.__dict__


def test_install_twice_wraps_once(dispatch):
    register = AddonManager.register
    dispatch.install()
    assert AddonManager.register is register
