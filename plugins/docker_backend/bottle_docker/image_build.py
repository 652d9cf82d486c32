"""Building the agent and bundle images with the Docker engine, under the names of :mod:`bottle_core.images`.

A change to a Dockerfile, a context file, the base image or the claude binary
gives a new name and so a rebuild; no change reuses the image without calling
the builder at all.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bottle_core import claude_binary
from bottle_core.errors import BottleRuntimeError
from bottle_core.images import BASE_LABEL, CONTEXTS, LABEL, ROLES, bases, resolved_names

def stderr_progress(role: str) -> Callable[[str], None]:
    """The default progress sink: each build line on stderr, prefixed ``[bottle-<role>]``."""

    def show(line: str) -> None:
        if line.strip():
            sys.stderr.write(f"[bottle-{role}] {line.rstrip()}\n")
            sys.stderr.flush()
    return show


def base_image_id(client, base: str) -> str:
    """The ID of the local base image; a clear error when it is not there (no pull is tried)."""
    from .engine import not_found

    try:
        return client.api.inspect_image(base)["Id"]
    except Exception as exc:
        if not not_found(exc):
            raise
        raise BottleRuntimeError(
            f"base image {base} is not present",
            hint=f"build or pull it (`docker pull {base}`), or set BOTTLE_BASE_IMAGE to a Debian-based image you have",
        ) from None


def ensure_images(client, base: str, *, bundle_base: str | None = None, force: bool = False,
                  progress: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """Tags of the agent image for ``base`` and the bundle image for ``bundle_base`` (default ``base``),
    building those that are missing (or all, with force).

    Returns ``{"agent": "bottle-agent:<hash12>", "bundle": "bottle-bundle:<hash12>"}``.
    An image whose tag already exists is reused without calling the builder.
    ``progress(role, line)`` receives every build output line; by default they
    go to stderr, prefixed ``[bottle-agent]`` or ``[bottle-bundle]``.
    """
    bundle_base = bundle_base or base
    names = resolved_names(base, bundle_base, partial(base_image_id, client))
    role_base = bases(names)
    claude = claude_binary.locate() if force or not _present(client, names["agent"]) else None
    tags = {}
    for role in ROLES:
        tag = tags[role] = names[role]
        if force or not _present(client, tag):
            show = (lambda line, r=role: progress(r, line)) if progress else stderr_progress(role)
            build(client, role, tag, role_base[role], show, extra_files={"claude": claude} if role == "agent" else {})
            prune_older(client, role, role_base[role], keep=tag)
    return tags


def ensure_planned(client, plan_images: dict[str, str]) -> None:
    """Make sure the images a Plan names exist, building the missing ones (launch calls this).

    Inputs that changed since ``prepare`` (a new claude binary, a rebuilt
    base) would build under other names than the Plan's: that is an error
    asking for a new plan, never a silent switch to other images.
    """
    if all(_present(client, plan_images[role]) for role in ROLES):
        return
    built = ensure_images(client, plan_images["base"], bundle_base=bases(plan_images)["bundle"])
    changed = [f"{plan_images[role]} is now {built[role]}" for role in ROLES if built[role] != plan_images[role]]
    if changed:
        raise BottleRuntimeError(f"the images' inputs changed since the plan was made ({'; '.join(changed)})",
                                 hint="start the bottle again: a new plan names the new images")


#: Builds of one role and base kept besides the newest: another checkout or version of bottle on the same
#: engine builds its own, and must not have them removed under a launch.
KEEP_BUILDS = 4


def prune_older(client, role: str, base: str, keep: str) -> list[str]:
    """Remove earlier builds of ``role`` from the same base beyond the newest :data:`KEEP_BUILDS`.

    Each change of input leaves a build behind. Images still used by a
    container stay; builds from other bases stay too, so bottles with
    different base images do not rebuild each other away.
    """
    from docker.errors import APIError

    builds = client.images.list(filters={"label": [f"{LABEL}={role}", f"{BASE_LABEL}={base}"]})
    older = sorted((image for image in builds if keep not in image.tags),
                   key=lambda image: image.attrs.get("Created", ""), reverse=True)[KEEP_BUILDS - 1:]
    removed = []
    for image in older:
        try:
            client.images.remove(image.id)
            removed.append(image.id)
        except APIError:
            pass  # in use by a running bottle
    return removed


def _present(client, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def build(client, role: str, tag: str, base: str, show: Callable[[str], None], extra_files: dict[str, Path]) -> None:
    """Build one image from its folder (plus ``extra_files``) in a temporary context."""
    from docker.errors import APIError

    show(f"building {tag} from {base}")
    with tempfile.TemporaryDirectory(prefix=f"bottle-{role}-", dir=_context_parent()) as work:
        context = Path(work)
        shutil.copytree(CONTEXTS[role], context, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        for name, source in extra_files.items():
            try:
                os.link(source, context / name)  # 400 MB of claude: link rather than copy when we can
            except OSError:
                shutil.copy2(source, context / name)
        last = ""
        try:
            for chunk in client.api.build(path=str(context), tag=tag, buildargs={"BASE": base}, rm=True,
                                          forcerm=True, decode=True, labels={LABEL: role, BASE_LABEL: base}):
                if "error" in chunk:
                    raise BottleRuntimeError(f"building {tag} failed: {chunk['error'].strip()}",
                                             hint=f"last step: {last.strip()[:120]}")
                for line in (chunk.get("stream") or "").splitlines():
                    last = line or last
                    show(line)
        except APIError as exc:
            raise BottleRuntimeError(f"building {tag} failed: {exc.explanation or exc}") from None
    show(f"built {tag}")


def _context_parent() -> str | None:
    """Where build contexts go: beside the claude cache, so the fetched binary can be hard-linked, not copied."""
    parent = claude_binary.cache_root().parent / "build"
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # the system's temporary directory will do
    return str(parent)
