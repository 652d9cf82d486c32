"""The ``bottle`` command line.

Kept light: backends and the docker SDK are imported only inside the
commands that need them, so ``bottle --help`` and ``bottle backends`` start fast.
Every failure is one line on stderr; exit 2 for usage/manifest errors, 1 for
runtime failures.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from .errors import BottleError

DEFAULT_MANIFEST = "bottle.toml"


class BottleGroup(click.Group):
    """A group that adds plugin commands lazily, and renders bottle's errors as one line."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if BottleGroup._plugins_loaded:
            return
        BottleGroup._plugins_loaded = True
        from .plugins import Plugins

        plugins = Plugins()
        plugins.load_plugins()
        plugins.call_each("register_commands", cli=self)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)


def emit(rows: Any, as_json: bool, columns: list[str]) -> None:
    """Print rows as JSON, or as an aligned table of ``columns``."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    table = [[str(row.get(col, "")) if row.get(col) is not None else "-" for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    click.echo("  ".join(col.upper().ljust(w) for col, w in zip(columns, widths)).rstrip())
    for r in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


manifest_option = click.option(
    "-m", "--manifest", "manifest_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Manifest file (default: ./{DEFAULT_MANIFEST}).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def load_manifest(manifest_path: Path | None):
    from .manifest import Manifest

    return Manifest.load(manifest_path or Path(DEFAULT_MANIFEST))


@click.group(cls=BottleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--backend", envvar=None, default=None, help="Backend to use (default: $BOTTLE_BACKEND, the bottle's, docker).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="bottle-core", prog_name="bottle")
@click.pass_context
def cli(ctx: click.Context, backend: str | None, debug: bool) -> None:
    """Run AI coding agents in sealed sandboxes ("bottles")."""
    ctx.obj = {"backend": backend, "debug": debug}


@cli.command()
@json_option
def backends(as_json: bool) -> None:
    """List installed backends and whether each can work here."""
    from .plugins import describe_backends

    emit(describe_backends(), as_json, ["name", "distribution", "version", "available", "reason"])


@cli.command()
@json_option
@click.option("--refresh", is_flag=True, help="Ask again what backends cache (the smol backend's test boot).")
def doctor(as_json: bool, refresh: bool) -> None:
    """Check for real that each installed backend works here (may start a throwaway sandbox).

    Exits 1 when no backend works here.
    """
    from .plugins import diagnose_backends

    reports = diagnose_backends(refresh=refresh)
    if as_json:
        click.echo(json.dumps(reports, indent=2, default=str))
    else:
        for report in reports:
            click.echo(f"{report['name']}: {'ok' if report['ok'] else 'NOT OK'}")
            for check in report.get("checks", []):
                detail = f": {check['detail']}" if check.get("detail") else ""
                click.echo(f"  {'ok  ' if check['ok'] else 'FAIL'} {check['name']}{detail}")
    if not any(report["ok"] for report in reports):
        sys.exit(1)


@cli.command()
@json_option
def plugins(as_json: bool) -> None:
    """List installed provisioner plugins, with what they implement and load errors."""
    from .plugins import Plugins

    manager = Plugins()
    manager.load_plugins(strict=False)
    rows = [r.as_dict() for r in manager.records.values()]
    emit(rows, as_json, ["name", "distribution", "version", "loaded", "hooks", "error"])


strict_option = click.option("--strict", is_flag=True,
                             help="Refuse a manifest asking for something bottle does not enforce yet (default: warn).")


def check_enforced(manifest, agent: str | None, strict: bool) -> None:
    """Warn about each field nothing enforces yet (see ``manifest.unenforced``); with ``strict``, refuse them."""
    from .errors import ManifestError
    from .manifest import unenforced

    lines = unenforced(manifest, agent)
    if lines and strict:
        raise ManifestError(manifest.source, "not enforced yet: " + "; ".join(lines),
                            hint="remove these fields, or run without --strict to go on with a warning")
    for line in lines:
        click.echo(f"bottle: warning: {manifest.source}: {line}", err=True)


@cli.command()
@manifest_option
@strict_option
def validate(manifest_path: Path | None, strict: bool) -> None:
    """Check the manifest and say what it declares (and what is not enforced yet)."""
    manifest = load_manifest(manifest_path)
    check_enforced(manifest, None, strict)
    click.echo(f"{manifest.source}: ok ({len(manifest.bottles)} bottles, {len(manifest.agents)} agents)")


@cli.group()
def manifest() -> None:
    """Manifest tools."""


@manifest.command()
def schema() -> None:
    """Print the JSON Schema of the manifest."""
    from .manifest import Manifest

    click.echo(json.dumps(Manifest.model_json_schema(), indent=2))


@manifest.command()
def reference() -> None:
    """Print the manifest reference (Markdown), generated from the models."""
    from .reference import render

    click.echo(render(), nl=False)


def _spec(manifest_path: Path | None, agent: str, copy_cwd: bool):
    from .spec import BottleSpec

    return BottleSpec(manifest=load_manifest(manifest_path), agent=agent, copy_cwd=copy_cwd, cwd=Path.cwd())


@cli.command()
@manifest_option
@click.argument("agent")
@click.pass_obj
def plan(obj: dict, manifest_path: Path | None, agent: str) -> None:
    """Print the Plan for AGENT as JSON, without starting or writing anything."""
    from . import session

    spec = _spec(manifest_path, agent, copy_cwd=True)
    plugins = session.plugins_for(spec, obj["backend"])
    click.echo(session.plan_for(plugins, spec).model_dump_json(indent=2))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@manifest_option
@strict_option
@click.option("--copy-cwd/--no-copy-cwd", default=True, help="Copy the current directory into /workspace (default on).")
@click.argument("agent")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj: dict, manifest_path: Path | None, strict: bool, copy_cwd: bool, agent: str,
        claude_args: tuple[str, ...]) -> None:
    """Run Claude Code as AGENT in a fresh bottle; arguments after -- go to claude."""
    from . import session

    spec = _spec(manifest_path, agent, copy_cwd)
    check_enforced(spec.manifest, agent, strict)
    plugins = session.plugins_for(spec, obj["backend"])
    plan_ = session.prepare(plugins, spec)
    for secret in plan_.secrets:
        if secret.optional and secret.value() is None:
            click.echo(f"bottle: warning: {secret.from_env} is not set here, so claude in the bottle has no "
                       "credentials for the model (set it; the bottle only ever sees a placeholder)", err=True)
    with session.running(plugins, plan_) as bottle:
        code = bottle.exec_claude(_after_dashes(claude_args))
    sys.exit(code)


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@manifest_option
@strict_option
@click.option("--copy-cwd/--no-copy-cwd", default=False, help="Copy the current directory into /workspace (default off).")
@click.argument("agent")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj: dict, manifest_path: Path | None, strict: bool, copy_cwd: bool, agent: str,
          command: tuple[str, ...]) -> None:
    """Start a fresh bottle of AGENT, run COMMAND as the agent user in /workspace, remove it all."""
    from . import session

    argv = _after_dashes(command)
    if not argv:
        from .errors import UsageError

        raise UsageError("no command given", hint="write it after --, e.g. bottle exec AGENT -- make test")
    spec = _spec(manifest_path, agent, copy_cwd)
    check_enforced(spec.manifest, agent, strict)
    plugins = session.plugins_for(spec, obj["backend"])
    plan_ = session.prepare(plugins, spec)
    with session.running(plugins, plan_) as bottle:
        code = bottle.run(argv, tty=sys.stdin.isatty() and sys.stdout.isatty())
    sys.exit(code)


def _after_dashes(args: tuple[str, ...]) -> list[str]:
    # Arguments after the agent are passed through untouched, so click keeps a leading "--".
    return list(args[1:] if args[:1] == ("--",) else args)


def _backend_only(obj: dict, *, need_available: bool = False):
    """The selected backend alone; by default even when it could not launch here (ls, stop and gc still work)."""
    from .plugins import Plugins, select_backend

    plugins = Plugins()
    plugins.load_backend(select_backend(obj["backend"], None), need_available=need_available)
    return plugins


@cli.command(name="ls")
@json_option
@click.pass_obj
def ls(obj: dict, as_json: bool) -> None:
    """List running bottles."""
    rows = _backend_only(obj).call_first("list_bottles") or []
    now = time.time()
    for row in rows:
        row["age"] = _age(now - float(row.get("started") or now))
    emit(rows, as_json, ["slug", "agent", "backend", "age"])


def _age(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


@cli.command()
@click.argument("slug")
@click.pass_obj
def stop(obj: dict, slug: str) -> None:
    """Stop bottle SLUG and remove everything it created."""
    from .errors import UsageError

    if not _backend_only(obj).call_first("stop_bottle", slug=slug):
        raise UsageError(f"no running bottle {slug!r}", hint="see `bottle ls`")
    click.echo(f"stopped {slug}")


@cli.command()
@json_option
@click.option("--keep-days", type=click.FloatRange(min=0), default=None,
              help="Keep the logs of ended bottles this many days (default 7).")
@click.pass_obj
def gc(obj: dict, as_json: bool, keep_days: float | None) -> None:
    """Remove every labelled resource whose bottle is gone, and logs past their keeping time."""
    from .plan import DEFAULT_RETENTION_DAYS, prune_state_dirs

    plugins = _backend_only(obj)
    removed = plugins.call_first("collect_garbage") or []
    active = {row["slug"] for row in plugins.call_first("list_bottles") or []}
    days = DEFAULT_RETENTION_DAYS if keep_days is None else keep_days
    removed += [f"state dir {path}" for path in prune_state_dirs(active, older_than=days * 86400)]
    if as_json:
        click.echo(json.dumps(removed))
    else:
        for line in removed:
            click.echo(f"removed {line}")
        click.echo(f"{len(removed)} removed")


def _log_kind_options(command):
    """One ``--KIND`` flag per kind of log bottle keeps (see bottle_core.logs.KINDS)."""
    from .logs import KINDS

    for kind in reversed(list(KINDS.values())):
        command = click.option(f"--{kind.name}", "kinds", flag_value=kind.name, multiple=True, help=f"Show {kind.help}.")(command)
    return command


@cli.command()
@click.argument("target")
@_log_kind_options
@json_option
@click.option("-f", "--follow", is_flag=True, help="Keep showing new records until the bottle ends.")
def logs(target: str, kinds: tuple[str, ...], as_json: bool, follow: bool) -> None:
    """Show the logs of bottle TARGET (a slug, or an agent name for its most recent bottle)."""
    from . import logs as bottle_logs

    state_dir = bottle_logs.find_state_dir(target)
    chosen = [bottle_logs.KINDS[name] for name in kinds] or list(bottle_logs.KINDS.values())
    shown = bottle_logs.follow(state_dir, chosen) if follow else bottle_logs.records(state_dir, chosen)
    for record in shown:
        click.echo(bottle_logs.render(record, as_json=as_json))


@cli.group()
def image() -> None:
    """Sandbox images."""


@image.command()
@click.option("--force", is_flag=True, help="Rebuild even when the content hash is unchanged.")
@click.pass_obj
def build(obj: dict, force: bool) -> None:
    """Build the backend's images (agent and bundle)."""
    for name in _backend_only(obj, need_available=True).call_first("build_images", force=force) or []:
        click.echo(name)


def _terminate(signum: int, _frame: Any) -> None:
    # Turn SIGTERM into an exception so every `with` block removes what it created.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bottle`` command."""
    from . import settings

    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or settings.current().debug
    try:
        cli.main(args=argv, prog_name="bottle", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("bottle: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except BottleError as exc:
        if debug:
            import traceback

            traceback.print_exception(exc.__cause__ or exc)
        click.echo(f"bottle: error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("bottle: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        click.echo(f"bottle: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)
