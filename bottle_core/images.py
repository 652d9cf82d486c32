"""The agent and bundle images, named by a content hash of their inputs, the same for every backend.

``bottle-<role>:<hash12>``: the hash covers the role's build context (shipped
with bottle-core), its base image's ID and, for the agent, the claude
binary's identity (its digest, or the npm release it is fetched as).

The two roles may have different bases. The agent's may be the manifest's
``image``, which a repository's author chooses; the bundle holds the real
secrets, the git tokens and the CA's key, so it is built only from the
user's own base (``BOTTLE_BASE_IMAGE``, or Debian's), never the manifest's. A change
to any input gives a new name and so a rebuild; no change reuses the image.
Backends resolve the names in ``prepare`` (the Plan records them; nothing is
fetched or built then) and build a missing one at launch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from . import agent, claude_binary
from .bundle import contract

#: Each role's build context, shipped with bottle-core so every backend builds the same images.
CONTEXTS = {"agent": agent.image_context(), "bundle": contract.image_context()}
ROLES = ("agent", "bundle")
#: Labels a backend puts on what it builds: the role, and the base image's name.
LABEL = "bottle.image"
BASE_LABEL = "bottle.base"


def content_hash(folder: Path, extra: dict[str, str]) -> str:
    """sha256 over every file of a build context (names and bytes) and the ``extra`` inputs."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    for key in sorted(extra):
        h.update(f"{key}={extra[key]}\0".encode())
    return h.hexdigest()


def image_tag(role: str, extra: dict[str, str]) -> str:
    """``bottle-<role>:<hash12>``, the hash covering the role's build context and its ``extra`` inputs."""
    return f"bottle-{role}:{content_hash(CONTEXTS[role], extra)[:12]}"


def build_inputs(base_id: str, claude: str, bundle_base_id: str | None = None) -> dict[str, dict[str, str]]:
    """What each image depends on beyond its own folder: its base image's ID, and the agent's claude binary."""
    return {"agent": {"base": base_id, "claude": claude}, "bundle": {"base": bundle_base_id or base_id}}


def image_names(base: str, base_id: str, claude: str | None = None, *, bundle_base: str | None = None,
                bundle_base_id: str | None = None) -> dict[str, str]:
    """The names of a bottle's images and their bases.

    ``{"base", "bundle_base", "agent": "bottle-agent:…", "bundle": "bottle-bundle:…"}``.

    :param base: the agent's base image's name, as the manifest or ``BOTTLE_BASE_IMAGE`` gives it.
    :param base_id: its ID in the engine that builds the images (a rebuilt base renames the image).
    :param claude: the claude binary's identity; :func:`claude_binary.identity` (which fetches nothing) when None.
    :param bundle_base: the bundle's base, the user's own (never the manifest's); ``base`` when not given.
    :param bundle_base_id: its ID.
    """
    inputs = build_inputs(base_id, claude or claude_binary.identity(), bundle_base_id)
    return {"base": base, "bundle_base": bundle_base or base,
            **{role: image_tag(role, inputs[role]) for role in ROLES}}


def resolved_names(base: str, bundle_base: str, image_id: Callable[[str], str]) -> dict[str, str]:
    """:func:`image_names` for the agent's ``base`` and the bundle's ``bundle_base``, each distinct base's ID
    asked of ``image_id`` once (the two are the same image unless a manifest names its own)."""
    ids = {name: image_id(name) for name in dict.fromkeys((base, bundle_base))}
    return image_names(base, ids[base], bundle_base=bundle_base, bundle_base_id=ids[bundle_base])


def bases(images: dict[str, str]) -> dict[str, str]:
    """Each role's base image name in a Plan's ``images`` (a plan without ``bundle_base`` builds both from ``base``)."""
    return {"agent": images["base"], "bundle": images.get("bundle_base") or images["base"]}
