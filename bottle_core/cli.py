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
from .terminal import visible

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
    table = [[visible(row.get(col, "")) if row.get(col) is not None else "-" for col in columns] for row in rows]
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


@cli.command()
@manifest_option
def validate(manifest_path: Path | None) -> None:
    """Check the manifest and say what it declares."""
    from . import settings
    from .plan import DEFAULT_MODEL_HOST, check_hosts_allowed
    from .plugins import backend_entry_points

    manifest = load_manifest(manifest_path)
    installed = sorted(backend_entry_points())
    model_host = settings.current().model_host or DEFAULT_MODEL_HOST
    for name, bottle in sorted(manifest.bottles.items()):
        check_hosts_allowed(manifest, name, bottle, sorted({model_host, *bottle.egress.allow}))
        if bottle.backend and bottle.backend not in installed:
            nearest = _nearest_backend(bottle.backend)
            click.echo(f"bottle: warning: {visible(manifest.source)}: bottles.{name}.backend: no backend "
                       f"{visible(bottle.backend)!r} is installed here (installed: {', '.join(installed) or 'none'})"
                       + (f"; {nearest}" if nearest else ""), err=True)
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


def _spec(manifest_path: Path | None, agent: str, copy_cwd: bool, model_script: Path | None = None):
    from .spec import BottleSpec

    if model_script is not None:
        from .bundle.contract import read_model_script

        read_model_script(str(model_script))  # a script that will not play fails before anything starts
    return BottleSpec(manifest=load_manifest(manifest_path), agent=agent, copy_cwd=copy_cwd, cwd=Path.cwd(),
                      model_script=model_script.resolve() if model_script else None)


model_script_option = click.option(
    "--model-script", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Rehearse: answer claude from this JSON list of replies instead of the model (no key, nothing leaves "
         "the machine; see docs/rehearse.md).",
)


def _trusted_spec(manifest_path: Path | None, agent: str, copy_cwd: bool, model_script: Path | None):
    """The spec, once the manifest's bindings of host data are approved (asked on a terminal, else refused)."""
    from .trust import require_trust

    spec = _spec(manifest_path, agent, copy_cwd, model_script)
    ask = None
    if sys.stdin.isatty():
        def ask(summary: str) -> bool:
            click.echo(summary, err=True)
            return click.confirm("Trust these bindings (remembered until they change)?", default=False, err=True)
    require_trust(spec.manifest, ask=ask)
    return spec


@cli.command()
@manifest_option
@click.option("--revoke", is_flag=True, help="Forget the approval instead.")
def trust(manifest_path: Path | None, revoke: bool) -> None:
    """Approve what the manifest takes from this machine: secrets, git tokens and repositories, workspace files,
    skills, images, private networks.

    Lists each binding in plain words; a run asks again when any of them changes.
    """
    from . import trust as trust_

    manifest = load_manifest(manifest_path)
    if not trust_.bindings(manifest):
        click.echo(f"{visible(manifest.source)}: takes nothing from this machine; nothing to approve")
        return
    if revoke:
        done = trust_.revoke(manifest)
        click.echo(f"{visible(manifest.source)}: approval {'removed' if done else 'was not there'}")
        return
    click.echo(trust_.summary(manifest))
    trust_.approve(manifest)
    click.echo(f"{visible(manifest.source)}: approved")


@cli.command()
@manifest_option
@click.argument("agent")
@click.pass_obj
def plan(obj: dict, manifest_path: Path | None, agent: str) -> None:
    """Print the Plan for AGENT as JSON, without starting or writing anything."""
    from . import session

    spec = _spec(manifest_path, agent, copy_cwd=True)
    plugins = _plugins_for(obj, spec)
    click.echo(session.plan_for(plugins, spec).model_dump_json(indent=2))


def _plugins_for(obj: dict, spec):
    """The plugins of the spec's run; a backend named by the manifest's ``backend`` field and not installed here is
    reported at that field, with the nearest installed name."""
    from . import session, settings
    from .errors import ManifestError, UsageError

    try:
        return session.plugins_for(spec, obj["backend"])
    except UsageError as exc:
        field = spec.backend_field
        if obj["backend"] or settings.current().backend or not field or isinstance(exc, ManifestError):
            raise
        raise ManifestError(spec.manifest.source, exc.message, field=f"bottles.{spec.bottle_name}.backend",
                            hint=_nearest_backend(field) or exc.hint) from None


def _nearest_backend(name: str) -> str | None:
    """``did you mean 'docker'?`` for a name close to an installed backend's."""
    from .errors import did_you_mean
    from .plugins import backend_entry_points

    return did_you_mean(name, sorted(backend_entry_points()))


def _run_in_bottle(obj: dict, manifest_path: Path | None, agent: str, copy_cwd: bool, model_script: Path | None,
                   work, *, needs_model: bool) -> None:
    """``run`` and ``exec``: trust, plan, launch, ``work(bottle)`` for the exit code, the summary, exit.

    With ``needs_model`` (claude is what runs), a run that would reach the real model without
    credentials stops before anything starts; ``exec`` runs any command and needs none.
    """
    from . import session

    spec = _trusted_spec(manifest_path, agent, copy_cwd, model_script)
    plugins = _plugins_for(obj, spec)
    plan_ = session.prepare(plugins, spec)
    if needs_model and not plan_.scripted_model and any(s.optional and s.value() is None for s in plan_.secrets):
        from .claude_login import missing_credentials_message
        from .errors import UsageError

        session.discard_state(plan_)
        raise UsageError(missing_credentials_message())
    with session.running(plugins, plan_) as bottle:
        used = bottle.plan  # a bottle claimed from a warm pool has that bottle's slug and state dir
        code = work(bottle)
    _summary(used)
    sys.exit(code)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@manifest_option
@click.option("--copy-cwd/--no-copy-cwd", default=True, help="Copy the current directory into /workspace (default on).")
@model_script_option
@click.argument("agent")
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run(obj: dict, manifest_path: Path | None, copy_cwd: bool, model_script: Path | None, agent: str,
        claude_args: tuple[str, ...]) -> None:
    """Run Claude Code as AGENT in a fresh bottle; arguments after -- go to claude."""
    args = _after_dashes(claude_args)

    def work(bottle) -> int:
        code = bottle.exec_claude(args)
        from .work_left import look

        left = look(bottle.plan, bottle).line()  # before the bottle goes, while the work can still be asked for
        if left:
            click.echo(f"bottle: {visible(left)}", err=True)
        return code

    _run_in_bottle(obj, manifest_path, agent, copy_cwd, model_script, work, needs_model=True)


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@manifest_option
@click.option("--copy-cwd/--no-copy-cwd", default=False, help="Copy the current directory into /workspace (default off).")
@model_script_option
@click.argument("agent")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj: dict, manifest_path: Path | None, copy_cwd: bool, model_script: Path | None, agent: str,
          command: tuple[str, ...]) -> None:
    """Start a fresh bottle of AGENT, run COMMAND as the agent user in /workspace, remove it all."""
    argv = _after_dashes(command)
    if not argv:
        from .errors import UsageError

        raise UsageError("no command given", hint="write it after --, e.g. bottle exec AGENT -- make test")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    _run_in_bottle(obj, manifest_path, agent, copy_cwd, model_script, lambda bottle: bottle.run(argv, tty=tty),
                   needs_model=False)


def _summary(plan_) -> None:
    """One short account of the run on stderr, from the logs the bundle left in the state dir."""
    from .logs import summary
    from .supervise import summary as supervise_summary

    for line in [*summary(Path(plan_.state_dir)), supervise_summary(plan_)]:
        if line:
            click.echo(f"bottle: {visible(line)}", err=True)


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
    """One ``--KIND`` flag per kind of log bottle keeps (see bottle_core.log_kinds)."""
    from .log_kinds import KIND_HELP

    for name, help_ in reversed(list(KIND_HELP.items())):
        command = click.option(f"--{name}", "kinds", flag_value=name, multiple=True, help=f"Show {help_}.")(command)
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


def _running_slug(plugins, target: str) -> str:
    """A running bottle's slug from TARGET: its slug, or an agent name meaning its most recent running bottle."""
    from .errors import UsageError

    rows = plugins.call_first("list_bottles") or []
    chosen = [row for row in rows if row.get("slug") == target] or [row for row in rows if row.get("agent") == target]
    if not chosen:
        raise UsageError(f"no running bottle or agent named {target!r}", hint="see `bottle ls`")
    return max(chosen, key=lambda row: float(row.get("started") or 0))["slug"]


@cli.command()
@click.argument("target")
@json_option
@click.pass_obj
def home(obj: dict, target: str, as_json: bool) -> None:
    """Bring home now the git work bottle TARGET's gate accepted (a slug, or an agent for its newest running bottle).

    Only a backend whose gate cannot reach your repository (k8s) holds pushes; it also brings them home at the
    end of every run. Elsewhere pushes land in your repository at once.
    """
    from .errors import BottleRuntimeError, Unsupported

    plugins = _backend_only(obj)
    slug = _running_slug(plugins, target)
    try:
        records = plugins.call_first("bring_home", slug=slug)
    except Unsupported:  # docker, smol: the gate pushes straight into the repository
        click.echo(f"bottle {slug}: nothing waits to come home: its backend's git gate pushes into your "
                   "repository at once")
        return
    if as_json:
        click.echo(json.dumps(records, indent=2))
    for record in records if not as_json else []:
        ref = record["refs"][0]
        text = f"{record['decision']:<7} {record['remote']} {ref['ref']} {ref['old'][:7]}..{ref['new'][:7]}"
        click.echo(visible(text + (f"  rule {record['rule']}: {record['reason']}" if record.get("rule") else "")))
    if not records and not as_json:
        click.echo(f"bottle {slug}: nothing new to bring home")
    refused = [r for r in records if r["decision"] != "home"]
    if refused:
        raise BottleRuntimeError(f"bottle {slug}: {len(refused)} ref(s) not brought home "
                                 f"({', '.join(sorted({str(r['rule']) for r in refused}))})",
                                 hint=f"see `bottle logs {slug} --git`")


@cli.command()
@click.argument("target", required=False)
@json_option
@click.option("--full", is_flag=True, help="Show each call whole, not cut to one line.")
@click.pass_obj
def pending(obj: dict, target: str | None, as_json: bool, full: bool) -> None:
    """List the tool calls waiting for an answer, in bottle TARGET (a slug or agent) or in every running bottle.

    HASH names the whole call: `bottle approve TARGET ID --hash HASH` approves only the call you checked.
    """
    from . import supervise

    plugins = _backend_only(obj)
    slugs = [_running_slug(plugins, target)] if target else [row["slug"] for row in plugins.call_first("list_bottles") or []]
    rows = []
    for slug in slugs:
        try:
            waiting = supervise.pending(plugins, slug)
        except BottleError:
            if target:
                raise
            continue  # a bottle without supervision, or one ending right now
        for call in waiting:
            rows.append({"bottle": slug, **call, "input": call["input"] if as_json or full else _one_line(call["input"])})
    if full and not as_json:
        for row in rows:
            click.echo(visible(f"{row['bottle']} call {row['id']} hash {row.get('hash')}: {row['tool']}, "
                               f"{row['left']} s left ({row.get('reason', '')})"))
            for line in json.dumps(row["input"], indent=2, ensure_ascii=False).splitlines():
                click.echo("  " + visible(line))
        if not rows:
            click.echo("(none)")
        return
    emit(rows, as_json, ["bottle", "id", "hash", "tool", "input", "age", "left"])


def _one_line(value: Any, width: int = 60) -> str:
    """A call's input cut to one line; a cut one says so, and `bottle pending --full` shows it whole."""
    text = value.get("command") if isinstance(value, dict) and isinstance(value.get("command"), str) else json.dumps(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 20] + "... (cut, see --full)"


hash_option = click.option("--hash", "expect_hash", default=None, metavar="HASH",
                           help="Answer only if the call's hash is HASH, as `bottle pending` showed it.")


@cli.command()
@click.argument("target")
@click.argument("call_id")
@hash_option
@click.pass_obj
def approve(obj: dict, target: str, call_id: str, expect_hash: str | None) -> None:
    """Let the waiting tool call CALL_ID of bottle TARGET run (see `bottle pending`)."""
    from . import supervise

    plugins = _backend_only(obj)
    slug = _running_slug(plugins, target)
    supervise.answer(plugins, slug, call_id, True, expect_hash=expect_hash)
    click.echo(f"approved call {call_id} in {slug}")


@cli.command()
@click.argument("target")
@click.argument("call_id")
@click.option("--reason", default="", help="Told to the model with the refusal.")
@hash_option
@click.pass_obj
def deny(obj: dict, target: str, call_id: str, reason: str, expect_hash: str | None) -> None:
    """Refuse the waiting tool call CALL_ID of bottle TARGET (see `bottle pending`)."""
    from . import supervise

    plugins = _backend_only(obj)
    slug = _running_slug(plugins, target)
    supervise.answer(plugins, slug, call_id, False, reason, expect_hash=expect_hash)
    click.echo(f"denied call {call_id} in {slug}")


@cli.group()
def pool() -> None:
    """Warm pools: bottles launched ahead, so `bottle run`/`exec` of their agent start at once (docs/pool.md)."""


@pool.command(name="fill")
@manifest_option
@click.option("--size", type=click.IntRange(min=1, max=64), default=1, show_default=True,
              help="How many bottles to keep ready.")
@click.option("--idle", "idle_minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="End the pool after this many minutes with no claim, counted from the fill, then from "
                   "each claim (default 30).")
@click.argument("agent")
@click.pass_obj
def pool_fill(obj: dict, manifest_path: Path | None, size: int, idle_minutes: float | None, agent: str) -> None:
    """Keep SIZE bottles of AGENT ready; returns once they are. A keeper in the background refills after each run."""
    from . import pool as pools, session

    spec = _trusted_spec(manifest_path, agent, False, None)
    plugins = _plugins_for(obj, spec)
    pools.require_pooling(plugins)
    folder = pools.fill(manifest=spec.manifest.source, agent=agent, backend=plugins.backend or "docker",
                        cwd=str(spec.cwd), size=size,
                        idle_minutes=pools.DEFAULT_IDLE_MINUTES if idle_minutes is None else idle_minutes)
    click.echo(f"pool of {agent}: {len(pools.ready_slugs(folder))} ready")


@pool.command(name="ls")
@json_option
def pool_ls(as_json: bool) -> None:
    """List the warm pools: their agent, size, ready bottles and keeper."""
    from . import pool as pools

    rows = [pools.describe(folder) for folder in pools.pools()]
    if not as_json:
        rows = [{**row, "bottles": " ".join(row["bottles"])} for row in rows]
    emit(rows, as_json, ["agent", "backend", "size", "ready", "keeper", "manifest", "bottles"])


@pool.command(name="drain")
@manifest_option
@click.argument("agent", required=False)
@click.pass_obj
def pool_drain(obj: dict, manifest_path: Path | None, agent: str | None) -> None:
    """End the pools (of AGENT, of the manifest given with -m, or all): their unclaimed bottles are removed."""
    from . import pool as pools
    from .errors import UsageError

    manifest = str(Path(load_manifest(manifest_path).source).resolve()) if manifest_path or agent else None
    chosen = [folder for folder in pools.pools()
              if (manifest is None or pools.read_json(folder / pools.CONFIG_FILE).get("manifest") == manifest)
              and (agent is None or pools.read_json(folder / pools.CONFIG_FILE).get("agent") == agent)]
    if agent and not chosen:
        raise UsageError(f"no pool of agent {agent!r} for {manifest}", hint="see `bottle pool ls`")
    for folder in chosen:
        config = pools.read_json(folder / pools.CONFIG_FILE)
        plugins = _backend_only({"backend": config.get("backend") or obj["backend"]})
        pools.drain(folder, lambda slug: plugins.call_first("stop_bottle", slug=slug))
        click.echo(f"drained the pool of {config.get('agent')}")
    if not chosen:
        click.echo("no pool to drain")


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
    """Entry point of the ``bottle`` command (``argv``: a caller's own arguments, run in its process)."""
    if argv is not None:
        _main(argv)
        return
    try:
        _main(None)
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code: int | str | None) -> None:
    """End the ``bottle`` process with ``code``, as ``sys.exit`` would, but without the interpreter's teardown.

    Freeing every module and object a run has made (pydantic's schemas, the engine calls' buffers) takes the
    interpreter 0.3-0.8 s of CPU on a busy machine after the run's exit status is known, for nothing: the
    process ends. What ending normally does that matters still happens first: threads that are not daemons
    are waited for, the exit functions run, stdout and stderr are flushed.
    """
    import atexit
    import os
    import threading

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the interpreter itself calls as it ends
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # closed, or a reader gone (`bottle ls | head`): what sys.exit would have lost too
    os._exit(code or 0)


def _main(argv: list[str] | None) -> None:
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
        click.echo(f"bottle: error: {visible(exc.render())}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("bottle: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        click.echo(f"bottle: internal error: {type(exc).__name__}: {visible(exc)} (run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
