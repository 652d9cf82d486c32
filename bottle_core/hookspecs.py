"""The hooks of bottle: this module is their reference.

Backends (entry-point group ``bottle.backends``; only the selected one is
loaded) and provisioners (group ``bottle.plugins``; all are loaded) implement
these with ``from bottle_core import hookimpl``. bottle always calls hooks with
keyword arguments, so an implementation may accept any subset of them; give
implementations no default values (pluggy would silently leave such an
argument out).

The hooks are grouped by the phase they belong to: choosing a backend,
planning, launching, provisioning, the command line, and managing bottles.

firstresult hooks (``prepare``, ``launch`` and the management hooks) are
answered by the selected backend; when no implementation answers, bottle says
in one line that the backend does not support it.

The ``provision_*`` hooks run in this order: ca, claude_state, git, skills,
prompt, supervise. For each, every implementation runs: bottle's own first
(``tryfirst``), then the backend's, then the third-party plugins' (bottle
registers those ``trylast``, in the order they were found).

Network: bottle's own and the backend's provision hooks may run while the
bundle is still starting, so they must not need the network (or call
``bottle.ready()`` first). Every third-party plugin's provision hook runs after
``bottle.ready()``, with the bundle up.

``BOTTLE_TRACE_PLUGINS=1`` prints every hook call, its implementations in
call order and its time on stderr.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .plan import Plan
    from .sandbox import Bottle, ExecResult
    from .spec import BottleSpec

PROJECT = "bottle"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The provision hooks, in the order bottle calls them.
PROVISION_ORDER = ("provision_ca", "provision_claude_state", "provision_git", "provision_skills", "provision_prompt",
                   "provision_supervise")


# ---------------------------------------------------------------------------
# Choosing a backend
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def backend_availability() -> str | None:
    """Say whether this backend can work on this machine, cheaply.

    :return: ``None`` when the backend is usable, else one line saying why
        not and what to do ("no Docker engine at unix:///var/run/docker.sock:
        start dockerd"). ``bottle backends`` and backend selection call it.

    Stops at the first non-None result. Implemented by backends only; called
    on a manager holding that one backend, so it never sees another's answer.
    """


@hookspec(firstresult=True)
def backend_doctor(refresh: bool) -> dict:
    """Check for real that this backend works here (``bottle doctor``), which may take seconds.

    Unlike :func:`backend_availability` this may start something throwaway
    (a container, a microVM) to see it run; a slow check should cache its
    answer until what it depends on changes.

    :param refresh: ask again what was cached.

    :return: ``{"ok": bool, "reason": str | None, "checks": [{"name", "ok",
        "detail"}], ...}`` plus any backend-specific keys (JSON-serialisable).
        ``reason`` is one line saying why not, when ``ok`` is false.

    Stops at the first non-None result. Implemented by backends only (it is
    optional: without it, ``bottle doctor`` shows the availability); called
    on a manager holding that one backend.
    """


@hookspec(firstresult=True)
def backend_settings() -> list:
    """Declare the ``BOTTLE_*`` variables this backend reads (core's settings name none of a backend's).

    :return: a list of :class:`bottle_core.settings.BackendSetting` (a name
        such as ``docker_outbound_network`` for ``BOTTLE_DOCKER_OUTBOUND_NETWORK``,
        and one line of meaning). The backend reads each with
        :meth:`~bottle_core.settings.BackendSetting.value`; ``docs/settings.md``
        lists them (a test keeps the page and the declarations the same).

    Stops at the first non-None result. Implemented by backends only (optional);
    called on a manager holding that one backend.
    """


# ---------------------------------------------------------------------------
# Planning: what the user asked for, resolved before anything starts
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def prepare(spec: BottleSpec, stage_dir: Path) -> Plan:
    """Resolve what the user asked for into a Plan, before anything starts.

    :param spec: the manifest, the agent name, ``copy_cwd`` and the user's cwd.
    :param stage_dir: the state root (``$XDG_STATE_HOME/bottle``); the plan's
        own state dir is ``stage_dir/<slug>``.
    :return: the final Plan. Backends build it with
        :func:`bottle_core.plan.base_plan` from what they resolve themselves
        (slug-carrying names, network subnet, bundle IP, image names from
        :func:`bottle_core.images.image_names`); nothing renames it afterwards.

    Stops at the first non-None result. Implemented by the selected backend.
    Must not start, fetch or build anything, nor write anything but a cache
    memo (:func:`bottle_core.images.image_names` names the images without
    fetching claude): bottle stages the Plan (state dir, prompt file,
    plan.json) itself, and ``bottle plan`` only prints it.
    """


# ---------------------------------------------------------------------------
# Launching: the Plan brought up
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def launch(plan: Plan) -> AbstractContextManager[Bottle]:
    """Bring up the bottle the Plan describes: networks, bundle, agent sandbox.

    :param plan: the Plan from ``prepare``, staged; launch never changes it.
    :return: a context manager whose ``__enter__`` returns the running
        :class:`bottle_core.sandbox.Bottle` and whose ``__exit__`` removes
        everything launch created, on normal exit, on an exception and on
        Ctrl-C/SIGTERM (the CLI turns SIGTERM into an exception). The
        handle's ``plan`` is the Plan actually used: the given one, or, when
        the backend had to change something since ``prepare`` (docker: a
        subnet another bottle took meanwhile), a new Plan it saved again;
        bottle provisions with the handle's plan.

    Stops at the first non-None result. Implemented by the selected backend.
    """


@hookspec(firstresult=True)
def launch_pooled(plan: Plan) -> AbstractContextManager[Bottle]:
    """Like :func:`launch`, for a warm pool (docs/pool.md): the bottle up, its bundle waiting for a run.

    :param plan: the pooled bottle's Plan, staged, made by ``prepare`` as for any bottle.
    :return: a context manager like :func:`launch`'s, whose handle's
        ``bundle.ready()`` returns once the bundle waits for its run.

    The bundle is given the files of ``contract.pooled_files`` (no secret, no
    git token, no model script) and says ``contract.POOLED_LINE`` instead of
    getting ready; the handle's ``bundle.ready()`` returns once it has. No
    log is filed yet: the run that claims the bottle files them.

    Stops at the first non-None result. Implemented by a backend that can keep
    a pool; ``None`` means it cannot (``bottle pool`` says so).
    """


@hookspec(firstresult=True)
def claim_pooled(plan: Plan, pooled: Plan) -> AbstractContextManager[Bottle]:
    """Take over the pooled bottle ``plan.slug`` for one run: the run's bundle files in, its logs filed.

    :param plan: the run's Plan, made to fit the pooled bottle (its slug,
        state dir, network, images and placeholders are the pooled one's).
    :param pooled: the Plan the pooled bottle was launched with.
    :return: a context manager like :func:`launch`'s: ``__enter__`` places
        ``contract.claim_files`` in the waiting bundle (setting its packet
        filter again first unless ``bottle_core.pool.filter_holds``) and returns the
        handle; ``__exit__`` removes the bottle, which is never used again.

    Stops at the first non-None result. Implemented with :func:`launch_pooled`.
    """


# ---------------------------------------------------------------------------
# Provisioning: the running sandbox made ready for the agent (in PROVISION_ORDER)
# ---------------------------------------------------------------------------


@hookspec
def provision_ca(plan: Plan, bottle: Bottle) -> None:
    """Make the sandbox trust the bundle's TLS-inspecting proxy.

    :param plan: the Plan.
    :param bottle: the running Bottle handle (``exec``, ``copy_in``, ``copy_out``).

    Every implementation runs: bottle's own, the backend's, then the plugins'
    (after ``bottle.ready()``). The backend installs the bundle's CA (its private key never leaves the bundle); a plugin may add
    trust for its own tools. Runs first of the provision hooks.
    """


@hookspec
def provision_claude_state(plan: Plan, bottle: Bottle) -> None:
    """Give Claude Code its user state, so it starts with no first-run dialog.

    :param plan: the Plan (``plan.guest`` says where the agent's home and workspace are).
    :param bottle: the running Bottle handle.

    Every implementation runs, bottle's own first: it writes ``~/.claude.json``
    (onboarding done, the workspace trusted, the model key's placeholder
    approved) and ``~/.claude/settings.json`` (the user's allow-listed UI
    preferences, the bypass-permissions consent). A plugin that adds settings
    merges them into those files rather than replacing them.
    """


@hookspec
def provision_git(plan: Plan, bottle: Bottle) -> None:
    """Point the sandbox's git at the bundle's git gate for each remote in the plan.

    :param plan: the Plan (``plan.git_gate`` lists the remotes).
    :param bottle: the running Bottle handle.

    Every implementation runs: bottle's own, the backend's, then the plugins'
    (after ``bottle.ready()``). No upstream credential may be written into the
    sandbox.
    """


@hookspec
def provision_skills(plan: Plan, bottle: Bottle) -> None:
    """Install the agent's skills into the sandbox.

    :param plan: the Plan (``plan.skills`` lists name and host folder).
    :param bottle: the running Bottle handle.

    Every implementation runs: bottle's own first (it copies every skill of
    the plan), then the backend's, then the plugins' (after
    ``bottle.ready()``). A plugin may install further skills into
    ``plan.guest.skills_dir``.
    """


@hookspec
def provision_prompt(plan: Plan, bottle: Bottle) -> None:
    """Place the agent's prompt file at ``plan.guest.prompt_file``.

    :param plan: the Plan (``plan.prompt_file`` is the host copy, or None).
    :param bottle: the running Bottle handle.

    Every implementation runs: bottle's own first (it places the file, owned
    by the agent user with mode 0600), then the backend's, then the plugins'
    (after ``bottle.ready()``).
    """


@hookspec
def provision_supervise(plan: Plan, bottle: Bottle) -> None:
    """Wire Claude Code's hook events to the bundle's supervisor.

    :param plan: the Plan (``plan.supervise`` holds mode and port).
    :param bottle: the running Bottle handle.

    Every implementation runs: bottle's own, the backend's, then the plugins'
    (after ``bottle.ready()``). Runs last of the provision hooks, so a plugin
    here sees a fully provisioned sandbox.
    """


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``bottle`` command line.

    :param cli: the top-level click group; call ``cli.add_command(...)``.

    Every implementation runs. Called for plugins of group ``bottle.plugins``
    when the CLI starts a command; keep imports inside the command bodies so
    ``bottle --help`` stays fast.
    """


# ---------------------------------------------------------------------------
# Managing bottles: images, listing, stopping, garbage
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def build_images(force: bool) -> list[str]:
    """Build the backend's images (``bottle image build``), showing progress as they build.

    :param force: rebuild even when an image with the same content hash exists.
    :return: the image names that are now present.

    Stops at the first non-None result. Implemented by the selected backend.
    """


@hookspec(firstresult=True)
def list_bottles() -> list[dict]:
    """The running bottles this backend knows of (``bottle ls``).

    :return: one dict per bottle with at least ``slug``, ``agent``,
        ``backend`` and ``started`` (unix time).

    Stops at the first non-None result. Implemented by the selected backend.
    """


@hookspec(firstresult=True)
def stop_bottle(slug: str) -> bool:
    """Stop and remove the bottle ``slug`` and everything labelled with it (``bottle stop``).

    :param slug: the bottle's slug, as ``bottle ls`` shows it.
    :return: True when something was removed, False when no such bottle runs.

    Stops at the first non-None result. Implemented by the selected backend.
    """


@hookspec(firstresult=True)
def exec_in_bundle(slug: str, argv: list[str]) -> ExecResult:
    """Run ``argv`` inside the bundle of the running bottle ``slug``, to completion.

    :param slug: the bottle's slug, as ``bottle ls`` shows it.
    :param argv: the command; bottle uses it for the supervisor's control
        client (``bottle pending``, ``approve``, ``deny``), which talks to the
        supervisor over a socket the agent cannot reach.
    :return: the :class:`bottle_core.sandbox.ExecResult`; raise
        :class:`bottle_core.errors.UsageError` when no such bottle runs.

    Stops at the first non-None result. Implemented by the selected backend;
    ``None`` means the backend cannot do it.
    """


@hookspec(firstresult=True)
def bring_home(slug: str) -> list[dict]:
    """Land now, in the user's repositories, what the git gate of the running bottle ``slug`` accepted
    (``bottle home``).

    For a backend whose gate cannot push into a repository on the user's
    machine (a cluster's bundle pod): it keeps the pushes under the same ref
    policy and brings them home on demand and at the end of every run.

    :param slug: the bottle's slug, as ``bottle ls`` shows it.
    :return: one git log record per ref (``decision`` ``home``, or
        ``refused`` with its ``rule`` and ``reason``), each also filed in the
        bottle's git log; an empty list when nothing new waits. Raise
        :class:`bottle_core.errors.UsageError` when no such bottle runs.

    Stops at the first non-None result. A backend whose gate pushes into the
    user's repository at once (docker, smol) need not implement it: nothing
    ever waits to come home there, and ``bottle home`` says so.
    """


@hookspec(firstresult=True)
def collect_garbage() -> list[str]:
    """Remove every labelled resource whose bottle is gone (``bottle gc``).

    :return: a description of each removed resource ("container bottle-x-agent").

    Stops at the first non-None result. Implemented by the selected backend.
    """
