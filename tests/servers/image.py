"""The test-server image, shared by the integration tests and `make demo`: tagged by its content, built once."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

SERVERS_DIR = Path(__file__).resolve().parent
#: The scripted model server is the one ``--model-script`` runs in the bundle: one copy, shipped with bottle-core.
MODEL_SERVER = SERVERS_DIR.parent.parent / "bottle_core" / "bundle" / "image" / "model_server.py"
#: The bundle's module the model server takes its error pages from, copied beside it.
ERROR_PAGES = MODEL_SERVER.with_name("error_pages.py")
IMAGE_REPO = "bottle-test-server"
LABEL = "bottle.test"


class ImageBuildFailed(Exception):
    """The test-server image did not build; the message ends with the build's last output."""


def server_image_tag() -> str:
    """``bottle-test-server:<hash>``, the hash covering the Dockerfile and the server scripts."""
    digest = hashlib.sha256()
    for path in context_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{IMAGE_REPO}:{digest.hexdigest()[:12]}"


def context_files() -> list[Path]:
    """The image's build context: this folder's Dockerfile and scripts, and the bundle's model server (with its
    error pages)."""
    own = [p for p in SERVERS_DIR.iterdir() if p.is_file() and (p.name == "Dockerfile" or p.suffix == ".py")]
    return sorted([*own, MODEL_SERVER, ERROR_PAGES], key=lambda p: p.name)


def ensure_server_image(client, *, timeout: int = 600) -> tuple[str, bool]:
    """The image's tag, and whether it had to be built now (builds older than the newest four are then removed)."""
    import docker.errors

    tag = server_image_tag()
    try:
        client.images.get(tag)
        return tag, False
    except docker.errors.ImageNotFound:
        pass
    try:
        with tempfile.TemporaryDirectory() as context:
            for path in context_files():
                shutil.copy(path, Path(context) / path.name)
            client.images.build(path=context, tag=tag, labels={LABEL: "1"}, rm=True, forcerm=True, timeout=timeout)
    except docker.errors.BuildError as exc:
        log = "".join(chunk.get("stream", "") for chunk in exc.build_log if isinstance(chunk, dict))
        raise ImageBuildFailed(f"building {tag} failed: {exc}\n{log[-3000:]}") from None
    # The newest few builds stay: another checkout's test run may be using its own.
    older = sorted((image for image in client.images.list(name=IMAGE_REPO) if tag not in image.tags),
                   key=lambda image: image.attrs.get("Created", ""), reverse=True)[3:]
    for image in older:
        try:
            client.images.remove(image.id)
        except docker.errors.APIError:
            pass  # still used by someone's container; a later build removes it
    return tag, True
