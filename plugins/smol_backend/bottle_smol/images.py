"""The smol bottle's images: the same content-hash names the docker backend builds, read from the Docker engine.

smolvm boots the agent image from a ``docker save`` stream, and the bundle is
a container, so both come from the local Docker engine; ``bottle image build``
(docker backend) builds them there.
"""

from __future__ import annotations

from bottle_core.errors import BottleRuntimeError
from bottle_core.images import resolved_names


def base_image_id(base: str) -> str:
    """The base image's ID in the local Docker engine (part of the images' names)."""
    try:
        import docker
        from docker.errors import DockerException, ImageNotFound

        client = docker.from_env(timeout=10)
    except Exception as exc:  # no SDK or no socket: the same advice either way
        raise BottleRuntimeError(f"the smol backend reads its images from a Docker engine, and none answers ({exc})",
                                 hint="start dockerd (or set DOCKER_HOST), then `bottle --backend docker image build`") from None
    try:
        return client.images.get(base).id
    except ImageNotFound:
        raise BottleRuntimeError(f"base image {base} is not in the Docker engine",
                                 hint="build or pull it, or set BOTTLE_BASE_IMAGE to a Debian-based image you have") from None
    except DockerException as exc:
        raise BottleRuntimeError(f"the smol backend reads its images from a Docker engine, and none answers ({exc})",
                                 hint="start dockerd (or set DOCKER_HOST), then `bottle --backend docker image build`") from None
    finally:
        client.close()


def planned_images(base: str, bundle_base: str | None = None) -> dict[str, str]:
    """``{"base", "bundle_base", "agent", "bundle"}``: the names the docker backend builds for the agent's ``base``
    and the bundle's ``bundle_base`` (default ``base``), so both backends use one image each."""
    return resolved_names(base, bundle_base or base, base_image_id)
