"""bottle's own provisioning, written as an ordinary plugin.

It uses nothing but the public Bottle handle, so it works on every backend;
backends and third parties add their own implementations of the same hooks.
Its implementations are ``tryfirst``: bottle's own provisioning runs before
the backend's and the plugins'.
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path

from . import clone, hostrepo
from .hookspecs import hookimpl
from .plan import Plan
from .sandbox import Bottle, tar_of_folders
from .workspace import LeftOut, WorkspaceFilter, history_pathspecs, recorded, workspace_tar


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
