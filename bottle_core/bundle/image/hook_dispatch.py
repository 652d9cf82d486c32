"""A cheaper way for mitmproxy to hand an event to its addons: only the addons that handle it are called.

mitmproxy (8.1) delivers every event (a request, a response, a TLS
handshake, ...) to each of its ~30 addons in turn, and for each one walks the
addon and its children looking the handler up, and sets up an error guard and
a coroutine, whether or not the addon has a handler for it; most have none.
Each event is followed by an ``update`` event that no addon of mitmdump
handles. That bookkeeping, about 30 addons for each of some 30 events of a
fresh HTTPS connection, was the largest single part of the proxy's CPU time
for a request.

:func:`install` replaces ``AddonManager.trigger_event`` with one that looks
each event's handlers up once (a table per event name, kept on the manager)
and sets up the guard and the await only for an addon that has one. The
order of the addons, the error handling of each (an exception is logged and
the next addon runs; ``AddonHalt`` stops the event) and what each handler
receives are those of mitmproxy's own.

The table is dropped whenever the addons can have changed: an addon
registered or removed (how mitmproxy adds, removes and reloads addons and
scripts), the chain replaced or grown, or options changed (the ``configure``
event, when the script loader may reorder its scripts).
"""

from __future__ import annotations

import inspect
import types

from mitmproxy import addonmanager, exceptions

#: Where a manager keeps its table: (the chain it was made from, its length, {event name: [(addon, handlers)]}).
TABLE = "_bottle_hook_table"


def _handlers(addon, name: str) -> list:
    """The callables named ``name`` on ``addon`` and its children, in mitmproxy's order (``traverse``)."""
    found = []
    for each in addonmanager.traverse([addon]):
        func = getattr(each, name, None)
        if func and not isinstance(func, types.ModuleType):  # an imported module named like a hook is skipped
            found.append(func)
    return found


def handlers(manager, name: str) -> list[tuple[object, list]]:
    """The addons of ``manager``'s chain that handle the event ``name``, each with its handlers, in order."""
    table = manager.__dict__.get(TABLE)
    if table is None or table[0] is not manager.chain or table[1] != len(manager.chain):
        table = (manager.chain, len(manager.chain), {})
        manager.__dict__[TABLE] = table
    found = table[2].get(name)
    if found is None:
        found = table[2][name] = [(addon, funcs) for addon in manager.chain if (funcs := _handlers(addon, name))]
    return found


def forget(manager) -> None:
    """Drop ``manager``'s table: the next event looks its handlers up again."""
    manager.__dict__.pop(TABLE, None)


async def trigger_event(self, event) -> None:
    """Trigger ``event`` across all addons, calling only those that handle it."""
    args = None  # the event's fields, read once: each handler gets the same objects, as from mitmproxy
    for addon, funcs in handlers(self, event.name):
        try:
            with addonmanager.safecall():
                for func in funcs:
                    if not callable(func):
                        raise exceptions.AddonManagerError(f"Addon handler {event.name} ({addon}) not callable")
                    args = event.args() if args is None else args
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
        except exceptions.AddonHalt:
            return


def _forgetting(method, event: str | None = None):
    """``method`` of the manager, dropping the table once it has run (it may have changed the addons).

    With ``event``, only when the event it triggers is that one (``trigger`` also carries every log line).
    """
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            if event is None or getattr(args[0] if args else None, "name", None) == event:
                forget(self)
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    wrapper.bottle_forgets = True
    return wrapper


#: The manager's methods after which its addons may differ, and the event that says so (None: any call).
CHANGES = {"register": None, "remove": None, "clear": None, "trigger": "configure"}


def install() -> None:
    """Put :func:`trigger_event` in place (a mitmproxy without the parts it relies on stops the proxy)."""
    manager = addonmanager.AddonManager
    if not all(callable(getattr(addonmanager, part, None)) for part in ("traverse", "safecall")) \
            or not inspect.iscoroutinefunction(getattr(manager, "trigger_event", None)) \
            or not all(callable(getattr(manager, name, None)) for name in CHANGES):
        raise RuntimeError("this mitmproxy dispatches its events otherwise: bottle cannot install its dispatch")
    for name, event in CHANGES.items():
        if not getattr(getattr(manager, name), "bottle_forgets", False):
            setattr(manager, name, _forgetting(getattr(manager, name), event))
    manager.trigger_event = trigger_event
