"""bottle's own provisioning, written as an ordinary plugin.

It uses nothing but the public Bottle handle, so it works on every backend;
backends and third parties add their own implementations of the same hooks.
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path

from .hookspecs import hookimpl
from .plan import Plan
from .sandbox import Bottle, tar_of_folders
from .workspace import WorkspaceFilter, workspace_tar


@hookimpl
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


@hookimpl
def provision_prompt(plan: Plan, bottle: Bottle) -> None:
    """Place the prompt file, owned by the agent user, mode 0600 (only when the prompt is non-empty)."""
    if not plan.has_prompt:
        return
    folder, name = posixpath.split(plan.guest.prompt_file)
    bottle.write_files(folder, {name: Path(plan.prompt_file).read_bytes()}, mode=0o600)


def copy_workspace(plan: Plan, bottle: Bottle) -> None:
    """Copy the user's directory into the workspace (a copy: the host folder is never written to)."""
    stream, left_out = workspace_tar(plan.cwd, WorkspaceFilter.of(plan.workspace), plan.guest.uid)
    bottle.copy_in(stream, plan.guest.workspace)
    print(left_out.line(), file=sys.stderr)
