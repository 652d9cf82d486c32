"""bottle's settings from the environment: every ``BOTTLE_*`` variable, read in this one place.

:func:`current` reads them into a :class:`Settings` (docs/settings.md is the
table a user reads; a test checks the two agree). It reads the environment on
every call, which costs microseconds: a test's ``monkeypatch.setenv`` and a
long-lived process both see the environment as it is now.

A backend declares its own variables as :class:`BackendSetting` values (the
``backend_settings`` hook) and reads them through them: core names none of
a backend's variables, and docs/settings.md lists both kinds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

#: The Claude Code release images get unless told otherwise: the one ``claude_state`` was checked against.
PINNED_CLAUDE_VERSION = "2.1.332"

#: The prefix every setting's variable has.
PREFIX = "BOTTLE_"


def _flag(value: str | None) -> bool:
    return value not in (None, "", "0")


@dataclass(frozen=True)
class Settings:
    """The ``BOTTLE_*`` environment, parsed. Each field's metadata gives its variable and its meaning."""

    backend: str | None = None
    """BOTTLE_BACKEND: the backend to use when --backend is not given (before the bottle's own `backend` field)."""
    plugins: frozenset[str] | None = None
    """BOTTLE_PLUGINS: comma-separated names of exactly which `bottle.plugins` load; set and empty loads none."""
    strict_plugins: bool = False
    """BOTTLE_STRICT_PLUGINS: 1 makes a plugin that fails to load an error instead of a warning."""
    trace_plugins: bool = False
    """BOTTLE_TRACE_PLUGINS: 1 prints every hook call, its implementations in call order and its time on stderr."""
    debug: bool = False
    """BOTTLE_DEBUG: 1 shows tracebacks, like --debug."""
    base_image: str | None = None
    """BOTTLE_BASE_IMAGE: the base image of the agent and bundle images, when the bottle names none (default debian:bookworm-slim)."""
    claude_binary: str | None = None
    """BOTTLE_CLAUDE_BINARY: a Linux `claude` binary for the agent image, instead of fetching one with npm."""
    claude_version: str = PINNED_CLAUDE_VERSION
    """BOTTLE_CLAUDE_VERSION: the Claude Code release npm fetches (default 2.1.332, the release whose first-run state bottle provisions; `latest` takes the newest)."""
    model_host: str | None = None
    """BOTTLE_MODEL_HOST: the model API host, always allowed and given the model key (default api.anthropic.com)."""
    upstream_ca_file: str | None = None
    """BOTTLE_UPSTREAM_CA_FILE: a host file of extra CA certificates the bundle's proxy trusts for upstream servers."""
    claude_token_url: str | None = None
    """BOTTLE_CLAUDE_TOKEN_URL: the token endpoint a host's Claude Code login is refreshed at before launch (default Claude Code's own)."""
    guest_skills_dir: str | None = None
    """BOTTLE_GUEST_SKILLS_DIR: where skills go inside the sandbox (default /home/agent/.claude/skills)."""


@dataclass(frozen=True)
class BackendSetting:
    """One ``BOTTLE_*`` variable a backend declares and reads (``name`` without the prefix, lower case)."""

    name: str
    meaning: str

    @property
    def variable(self) -> str:
        return variable(self.name)

    def value(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Its value now (an empty one counts as unset)."""
        return (os.environ if environ is None else environ).get(self.variable) or None


def variable(name: str) -> str:
    """The environment variable of the setting ``name``."""
    return PREFIX + name.upper()


def current(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return env.get(variable(name)) or None

    wanted = env.get(variable("plugins"))
    return Settings(
        backend=get("backend"),
        plugins=None if wanted is None else frozenset(n.strip() for n in wanted.split(",") if n.strip()),
        strict_plugins=_flag(env.get(variable("strict_plugins"))),
        trace_plugins=_flag(env.get(variable("trace_plugins"))),
        debug=_flag(env.get(variable("debug"))),
        base_image=get("base_image"),
        claude_binary=get("claude_binary"),
        claude_version=get("claude_version") or PINNED_CLAUDE_VERSION,
        model_host=get("model_host"),
        upstream_ca_file=get("upstream_ca_file"),
        claude_token_url=get("claude_token_url"),
        guest_skills_dir=get("guest_skills_dir"),
    )


def documented() -> list[tuple[str, str]]:
    """``(variable, meaning)`` for every setting, from the field docstrings (the table in docs/settings.md)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
            docs[node.target.id] = following.value.value  # type: ignore[union-attr]
    return [(variable(f.name), docs[f.name].split(": ", 1)[1]) for f in fields(Settings)]
