"""bottle's own provisioning, written as an ordinary plugin.

It uses nothing but the public Bottle handle, so it works on every backend;
backends and third parties add their own implementations of the same hooks.
Its implementations are ``tryfirst``: bottle's own provisioning runs before
the backend's and the plugins'.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import BottleRuntimeError
from .hookspecs import hookimpl
from .plan import Plan
from .sandbox import Bottle, ExecResult, as_argv, tar_of_folders


@hookimpl(tryfirst=True)
def provision_ca(plan: Plan, bottle: Bottle) -> None:
    """Make the agent trust the bundle's CA (its key never leaves the bundle), on any backend."""
    if bottle.bundle is None:
        return
    folder, name = posixpath.split(plan.guest.ca_cert)
    bottle.write_files(folder, {name: bottle.bundle.ca_certificate()}, mode=0o644, owner=0)
    # What update-ca-certificates does for one added certificate: append it to the
    # bundle file and link it by subject hash. The script itself re-walks all ~140
    # system certificates (about 1 s here); the certificate sits in the Debian
    # place, so any later update-ca-certificates run keeps it.
    bottle.check(["sh", "-ec", f'cert="{plan.guest.ca_cert}"; cat "$cert" >> "{plan.guest.ca_bundle}"; '
                  f'ln -sf "$cert" "/etc/ssl/certs/$(openssl x509 -hash -noout -in "$cert").0"'], user="0")


@hookimpl(tryfirst=True)
def provision_skills(plan: Plan, bottle: Bottle) -> None:
    """Copy every skill folder whole into the guest skills folder, in one tar stream."""
    if not plan.skills:
        return
    base, below = bottle.anchor(plan.guest.skills_dir)
    if base != plan.guest.home:  # a skills folder placed outside the home (BOTTLE_GUEST_SKILLS_DIR)
        bottle.check(["mkdir", "-p", base])
    stream = tar_of_folders(((skill.name, Path(skill.source)) for skill in plan.skills), uid=plan.guest.uid,
                            below=below)
    bottle.copy_in(stream, base)


@hookimpl(tryfirst=True)
def provision_prompt(plan: Plan, bottle: Bottle) -> None:
    """Place the prompt file, owned by the agent user, mode 0600 (only when the prompt is non-empty)."""
    if not plan.has_prompt:
        return
    folder, name = posixpath.split(plan.guest.prompt_file)
    bottle.write_files(folder, {name: Path(plan.prompt_file).read_bytes()}, mode=0o600)


def gate_url(plan: Plan, remote: str) -> str:
    """Where the agent reaches ``remote``: the git gate on the bundle's bottle-side address."""
    return f"http://{plan.network.bundle_ip}:{plan.git_gate.port}/{remote}.git"


@hookimpl(tryfirst=True)
def provision_git(plan: Plan, bottle: Bottle) -> None:
    """The agent's git: identity, safe.directory, no credential helper, and each gate remote in the workspace.

    Needs no network (the gate is only contacted when the agent fetches or
    pushes) and writes no credential anywhere: the upstreams' live in the bundle.
    """
    script = (
        'set -e\n'
        'git config --global --replace-all safe.directory "$WORKSPACE"\n'
        'git config --global credential.helper ""\n'
        '[ -z "$AUTHOR_NAME" ] || git config --global user.name "$AUTHOR_NAME"\n'
        '[ -z "$AUTHOR_EMAIL" ] || git config --global user.email "$AUTHOR_EMAIL"\n'
        'git -C "$WORKSPACE" rev-parse --git-dir >/dev/null 2>&1 || exit 0\n'
        'while [ $# -gt 0 ]; do\n'
        '  git -C "$WORKSPACE" remote remove "$1" 2>/dev/null || true\n'
        '  git -C "$WORKSPACE" remote add "$1" "$2"; shift 2\n'
        'done\n'
    )
    remotes = [part for name in plan.git_gate.remotes for part in (name, gate_url(plan, name))]
    gate = plan.git_gate
    bottle.check(["sh", "-c", script, "provision_git", *remotes],
                 env={"WORKSPACE": plan.guest.workspace, "AUTHOR_NAME": gate.author_name or "",
                      "AUTHOR_EMAIL": gate.author_email or "", "HOME": plan.guest.home})


@hookimpl(tryfirst=True)
def provision_supervise(plan: Plan, bottle: Bottle) -> None:
    """Send every Claude Code hook event to the bundle's supervisor, through settings the agent cannot change."""
    from . import supervise

    supervise.provision(plan, bottle)


def copy_workspace(plan: Plan, bottle: Bottle) -> None:
    """Copy the user's directory in (a copy: the host folder is never written to), and say what stayed out.

    In a git repository the workspace is a real clone of it: full history,
    the same branch, the working tree and index exactly as they are (ignored
    files only when the manifest asks), and a fresh git config (no remote,
    credential or hook of the host's). Either way the workspace filter leaves
    out ``.env*`` files and what the manifest excludes.
    """
    # Imported here: a run without a workspace copy (a claimed pooled bottle's, often) needs none of it.
    from . import clone, hostrepo
    from .workspace import LeftOut, WorkspaceFilter, history_pathspecs, recorded, workspace_tar

    filter_ = WorkspaceFilter.of(plan.workspace)
    repo = hostrepo.find_repository(Path(plan.cwd))
    if repo is not None and not repo.bare:
        left = LeftOut()
        stream = clone.clone_tar(repo, uid=plan.guest.uid, include_ignored=plan.git_gate.include_ignored,
                                 keep=recorded(filter_, left))
        left.in_history = clone.in_history(repo, history_pathspecs(filter_), filter_.keeps)
    else:
        stream, left = workspace_tar(plan.cwd, filter_, plan.guest.uid)
    bottle.copy_in(stream, plan.guest.workspace)
    print(left.line(), file=sys.stderr)


class ProvisionRound(Bottle):
    """What the provision hooks contribute, applied in one round: one archive, then one exec per user at once.

    The hooks are handed this instead of the bottle. Their ``copy_in`` and
    ``write_files`` go into one archive, unpacked at ``/`` in one engine call;
    their ``check`` commands are kept in order and run after it, one script a
    user (root's and the agent's, which cannot switch to each other: the agent
    has no capability), both at once: by the bottle's own way if it has one
    (``Bottle.apply_round``: a claimed pooled bottle's waiting processes), else
    one exec a user. A command's failure is raised then,
    naming the command. ``exec``, ``run``, ``copy_out`` and ``ready`` need the
    bottle as it is, so they apply what is held first; so does :meth:`apply`.
    """

    def __init__(self, bottle: Bottle):
        super().__init__(bottle.plan, bottle.bundle)
        self.inner = bottle
        self._members: list[tuple[tarfile.TarInfo, bytes | None]] = []
        self._steps: list[tuple[str, list[str], dict, str, bytes | None]] = []

    def __getattr__(self, name: str):
        """A backend's own hook may use its own handle's attributes: they are the bottle's."""
        return getattr(self.inner, name)

    # -- held for the round --------------------------------------------------------

    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        data = tar_stream if isinstance(tar_stream, bytes) else tar_stream.read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar.getmembers():
                content = tar.extractfile(info).read() if info.isreg() else None  # type: ignore[union-attr]
                info.name = posixpath.normpath(posixpath.join(dest, info.name)).lstrip("/")
                self._members.append((info, content))

    def check(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
              workdir: str | None = None, stdin: bytes | None = None) -> ExecResult:
        who = str(self.plan.guest.uid) if user is None else str(user)
        self._steps.append((who, as_argv(command), dict(env or {}), workdir or self.plan.guest.workspace, stdin))
        return ExecResult(0, b"", b"")

    # -- the bottle as it is -----------------------------------------------------

    def exec(self, command, **kwargs) -> ExecResult:
        self.apply()
        return self.inner.exec(command, **kwargs)

    def run(self, argv, **kwargs) -> int:
        self.apply()
        return self.inner.run(argv, **kwargs)

    def copy_out(self, src: str) -> bytes:
        self.apply()
        return self.inner.copy_out(src)

    def ready(self) -> None:
        self.apply()
        self.inner.ready()

    def apply(self) -> None:
        """Unpack the archive held, then run the commands held; raises naming the first that failed."""
        members, steps = self._members, self._steps
        self._members, self._steps = [], []
        by_user: dict[str, list[tuple[int, list[str], dict, str, bytes | None]]] = {}
        for number, (user, argv, env, workdir, stdin) in enumerate(steps):
            by_user.setdefault(user, []).append((number, argv, env, workdir, stdin))
        scripts = {user: _round_script(user, mine) for user, mine in by_user.items()}
        if not members and not scripts:
            return
        archive = _archive(members, scripts, steps)
        outcomes = self.inner.apply_round(archive, list(scripts)) if scripts else None
        if outcomes is None:  # one engine call for the archive, then one exec a user, at once
            from concurrent.futures import ThreadPoolExecutor

            self.inner.copy_in(archive, "/")
            with ThreadPoolExecutor(max_workers=max(1, len(scripts))) as pool:
                done = {user: pool.submit(self.inner.exec, ["sh", f"{ROUND_DIR}/{user}/script"], user=user,
                                          workdir="/") for user in scripts}
            outcomes = {user: future.result() for user, future in done.items()}
        for user, result in outcomes.items():
            if not result.ok:
                failed = _failed_step(result.stderr)
                shown = shlex.join(steps[failed][1]) if failed is not None else f"provisioning as user {user}"
                detail = [line for line in result.stderr.decode("utf-8", "replace").strip().splitlines()
                          if not line.startswith(STEP_MARK)][-1:] or ["no output"]
                raise BottleRuntimeError(f"in bottle {self.plan.slug}: `{shown}` exited {result.returncode}: "
                                         f"{detail[0]}")


#: Where a round's scripts and stdin files go: one folder a user, its own, removed by the script as it ends.
ROUND_DIR = "/run/bottle-provision"
STEP_MARK = "bottle-provision step "


def _round_script(user: str, steps: list) -> str:
    """One user's commands in order, each in its folder with its environment and stdin; stops at the first failure."""
    folder = f"{ROUND_DIR}/{user}"
    lines = ["set -u", f"trap 'rm -rf {folder}' EXIT"]
    for number, argv, env, workdir, stdin in steps:
        assignments = [f"{key}={value}" for key, value in env.items()]
        command = shlex.join(["env", *assignments, *argv] if assignments else argv)
        source = f"{folder}/stdin-{number}" if stdin is not None else "/dev/null"
        lines.append(f"printf '%s\\n' '{STEP_MARK}{number}' >&2")
        lines.append(f"( cd {shlex.quote(workdir)} && {command} ) < {source} || exit $?")
    return "\n".join(lines) + "\n"


def _failed_step(stderr: bytes) -> int | None:
    marks = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.startswith(STEP_MARK)]
    return int(marks[-1][len(STEP_MARK):]) if marks else None


def _archive(members: list, scripts: dict[str, str], steps: list) -> bytes:
    """The round's one tar stream: the hooks' files in the order given, then each user's script and stdin files.

    (Not below the agent's /tmp: a tmpfs, which the engine's archive calls do not reach.)
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
        if scripts:  # sticky and open like /tmp: each user's script removes its own folder
            info = tarfile.TarInfo(ROUND_DIR.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
        for user, script in scripts.items():
            # Its user's alone; a user named, not numbered, cannot be owner here: readable then.
            uid, private = (int(user), True) if user.isdigit() else (0, user in ("root",))
            folder = f"{ROUND_DIR}/{user}".lstrip("/")
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o700 if private else 0o755, uid, uid
            tar.addfile(info)
            inputs = [(f"stdin-{n}", stdin) for n, (who, _, _, _, stdin) in enumerate(steps)
                      if who == user and stdin is not None]
            for name, data in [("script", script.encode()), *inputs]:
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size, info.mode, info.uid, info.gid = len(data), 0o600 if private else 0o644, uid, uid
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
