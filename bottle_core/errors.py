"""The kinds of failure bottle reports, each rendered as one clear line by the CLI.

Exit codes follow one rule: a usage or manifest problem (the user can fix the
input) exits 2; anything that went wrong while doing the work exits 1.
"""

from __future__ import annotations


class BottleError(Exception):
    """Base of every failure bottle reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The single line shown to the user."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(BottleError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 2


class ManifestError(UsageError):
    """The manifest is missing, unreadable or invalid; names the file and the field path."""

    def __init__(self, source: str, message: str, *, field: str | None = None, hint: str | None = None):
        self.source = source
        self.field = field
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}", hint=hint)


class BackendUnavailable(BottleError):
    """The selected backend is unknown, or installed but cannot work on this machine."""


class PluginError(BottleError):
    """A plugin failed to load, or raised inside a hook; names the plugin and its distribution."""

    def __init__(self, plugin: str, distribution: str | None, message: str, *, hint: str | None = None):
        self.plugin = plugin
        self.distribution = distribution
        dist = f" (from {distribution})" if distribution else ""
        super().__init__(f"plugin {plugin!r}{dist}: {message}", hint=hint)


class BottleRuntimeError(BottleError):
    """The sandbox could not be built or run (engine error, image build failure, ...)."""


class Unsupported(BottleError):
    """The selected backend has no implementation of what was asked (a firstresult hook nobody answered)."""


def did_you_mean(name: str, choices) -> str | None:
    """``did you mean 'memory'?`` for the one of ``choices`` close to a mistyped ``name``, else None."""
    import difflib  # only an error's hint needs it

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
