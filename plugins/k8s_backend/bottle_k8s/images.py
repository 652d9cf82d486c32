"""The Plan's images on the cluster: built by the local Docker engine (bottle-docker), then taken to the cluster.

Two ways, by setting: ``BOTTLE_K8S_CONTAINERD_ADDRESS`` imports them into a
local node's containerd (``ctr -n k8s.io images import``; pods never pull
them), ``BOTTLE_K8S_REGISTRY`` pushes them to a registry the cluster pulls
from. With neither, a launch is refused: nothing would bring them there.
"""

from __future__ import annotations

import shutil
import subprocess

from bottle_core.errors import BottleRuntimeError
from bottle_core.locks import host_lock

from . import settings

#: The namespace of containerd the kubelet's CRI uses.
CRI_NAMESPACE = "k8s.io"


def cluster_name(image: str, registry: str | None = None) -> str:
    """The name a pod runs ``image`` by: under the registry when one is set, else as built."""
    registry = registry if registry is not None else settings.REGISTRY.value()
    return f"{registry.rstrip('/')}/{image}" if registry else image


def containerd_name(image: str) -> str:
    """The fully qualified name containerd files a locally built ``name:tag`` under."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image if '/' in image else 'library/' + image}"


def ensure_on_cluster(images: list[str]) -> dict[str, str]:
    """Build what the local engine lacks and take each image to the cluster; returns image -> the name pods use."""
    from bottle_docker import sidecar

    address, registry = settings.CONTAINERD_ADDRESS.value(), settings.REGISTRY.value()
    if not address and not registry:
        raise BottleRuntimeError("the k8s backend does not know how to get the images to the cluster",
                                 hint=f"set {settings.CONTAINERD_ADDRESS.variable} (a local node's containerd) or "
                                      f"{settings.REGISTRY.variable} (a registry the cluster pulls from)")
    client = sidecar.client()
    if address:
        for image in images:
            import_into_containerd(client, image, address)
        return {image: image for image in images}
    for image in images:
        push(client, image, registry)
    return {image: cluster_name(image, registry) for image in images}


def ctr() -> str:
    found = shutil.which("ctr")
    if not found:
        raise BottleRuntimeError("ctr (containerd's client) is needed to import images into the node",
                                 hint="install containerd, or set BOTTLE_K8S_REGISTRY instead")
    return found


def address_path(address: str) -> str:
    """``unix:///run/x.sock`` -> ``/run/x.sock`` (ctr takes a path)."""
    return address.removeprefix("unix://")


def in_containerd(image: str, address: str) -> bool:
    found = subprocess.run([ctr(), "--address", address_path(address), "-n", CRI_NAMESPACE, "images", "ls", "-q",
                            f"name=={containerd_name(image)}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise BottleRuntimeError(f"containerd at {address} did not answer: {found.stderr.strip()}",
                                 hint=f"check {settings.CONTAINERD_ADDRESS.variable}")
    return bool(found.stdout.strip())


def import_into_containerd(client, image: str, address: str) -> None:
    """``docker save`` piped into ``ctr images import``, once (a lock keeps two launches from doing it twice)."""
    from docker.errors import DockerException

    with host_lock("k8s-image-import"):
        if in_containerd(image, address):
            return
        process = subprocess.Popen([ctr(), "--address", address_path(address), "-n", CRI_NAMESPACE, "images",
                                    "import", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        try:
            for chunk in client.images.get(image).save(named=image):  # this name, not its first tag
                process.stdin.write(chunk)
        except (DockerException, BrokenPipeError) as exc:
            process.kill()
            raise BottleRuntimeError(f"cannot export image {image} for the cluster: {exc}") from None
        finally:
            process.stdin.close()
        err = process.stderr.read().decode("utf-8", "replace")
        if process.wait() != 0 or not in_containerd(image, address):
            raise BottleRuntimeError(f"containerd at {address} did not import {image}: {err.strip() or 'not listed'}")


def push(client, image: str, registry: str) -> None:
    """Tag ``image`` under ``registry`` and push it there."""
    from docker.errors import DockerException

    target = cluster_name(image, registry)
    repository, tag = target.rsplit(":", 1)
    try:
        client.images.get(image).tag(repository, tag)
        for line in client.images.push(repository, tag, stream=True, decode=True):
            if "error" in line:
                raise BottleRuntimeError(f"pushing {target}: {line['error']}")
    except DockerException as exc:
        raise BottleRuntimeError(f"pushing {target}: {exc}") from None
