"""The bundle's container: created with its files in, its packet filter's one-shot, its readiness and CA awaited.

What goes in and how readiness is announced is the backend-independent
contract of :mod:`bottle_core.bundle.contract`; this module only does it with
the Docker engine.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan

from . import labels
from .oneshot import run_one_shot
from .streams import read_archive

#: The engine's own copy of the bundle's output is capped too: the agent's doing can make that output large.
ENGINE_LOG = {"max-size": "32m", "max-file": "2"}


def create_bundle(client, plan: Plan, image: str, files: dict[str, bytes], created: list[str]) -> str:
    """Create (not start) the bundle on the outbound network, its files in; :func:`join_bottle_network` next.

    It needs no bottle network yet, so it is made while that network is: the engine joins a container's
    networks in its own order at the start, whichever was named first. The container's ID is appended to
    ``created`` as soon as it exists, so a failure further on still removes it.
    """
    from docker.types import LogConfig

    api = client.api
    bundle = api.create_container(
        image, name=f"bottle-{plan.slug}-bundle", environment=contract.bundle_environment(),
        labels=labels.for_bottle(plan, "bundle"), detach=True,
        host_config=api.create_host_config(
            cap_drop=["ALL"], cap_add=contract.CAPABILITIES, security_opt=["no-new-privileges:true"], init=True,
            mem_limit=contract.LIMITS["memory_bytes"], memswap_limit=contract.LIMITS["memory_bytes"],
            pids_limit=contract.LIMITS["pids"], nano_cpus=int(contract.LIMITS["cpus"] * 1e9),
            sysctls=contract.SYSCTLS, log_config=LogConfig(type=LogConfig.types.JSON, config=ENGINE_LOG),
            binds={m.host_path: {"bind": m.bundle_path, "mode": "ro" if m.read_only else "rw"}
                   for m in contract.bundle_mounts(plan)},
        ),
        networking_config=api.create_networking_config({plan.network.outbound: api.create_endpoint_config()}),
    )["Id"]
    created.append(bundle)
    put_files(client, bundle, files)
    return bundle


def join_bottle_network(client, plan: Plan, bundle: str) -> None:
    """Put the created bundle on the plan's bottle network, at its pinned IP."""
    client.api.connect_container_to_network(bundle, plan.network.name, ipv4_address=plan.network.bundle_ip)


def put_files(client, bundle: str, files: dict[str, bytes]) -> None:
    """Place ``files`` in the bundle. Copied in before it starts, never passed as environment (which
    `docker inspect` shows)."""
    client.api.put_archive(bundle, "/", files_tar(files))


def create_netfilter(client, plan: Plan, bundle: str, image: str, created: list[str]) -> str:
    """A one-shot container that will set the bundle's packet filter (see ``contract.NETFILTER_COMMAND``).

    It shares the bundle's network namespace and alone holds the network
    capabilities; the bundle itself never does.
    """
    api = client.api
    netfilter = api.create_container(
        image, command=contract.NETFILTER_COMMAND, user="0", name=f"bottle-{plan.slug}-netfilter",
        labels=labels.for_bottle(plan, "netfilter"), entrypoint=[], environment=contract.bundle_environment(),
        host_config=api.create_host_config(network_mode=f"container:{bundle}", cap_drop=["ALL"],
                                           cap_add=contract.NETFILTER_CAPABILITIES,
                                           security_opt=["no-new-privileges:true"]),
    )["Id"]
    created.append(netfilter)
    api.put_archive(netfilter, "/", files_tar(contract.netfilter_files(plan)))
    return netfilter


def set_filter(client, netfilter: str) -> None:
    """Set the started bundle's packet filter (the one-shot joins the bundle's namespace, which must exist)."""
    run_one_shot(client, netfilter, "set the bundle's packet filter")


def wait_for_bundle(client, bundle: str, slug: str, timeout: float = contract.READY_TIMEOUT) -> None:
    """Until the bundle says its daemons accept connections; fail with its last words if it dies or stalls.

    Its output is read as it comes (one streaming call, no polling of the engine): the wait ends on the
    ready line, or when the output ends because the bundle has exited.
    """
    said = threading.Event()

    def watch() -> None:
        seen = b""
        try:
            for chunk in client.api.logs(bundle, stdout=True, stderr=True, stream=True, follow=True):
                seen = seen[-len(contract.READY_LINE):] + chunk
                if contract.READY_LINE in seen:
                    said.set()
                    return
        except Exception:  # noqa: BLE001 - the stream broke: the bundle is gone, said below
            pass

    threading.Thread(target=watch, name=f"bundle-ready-{slug}", daemon=True).start()
    _poll(client, bundle, slug, said.is_set, "become ready", timeout, pause=0.25, wake=said)


def bundle_ca(client, bundle: str) -> bytes:
    """The bundle's CA certificate (the key stays in the bundle), read once: call it once the bundle is ready.

    A ready bundle has written it (the proxy is ready only once its CA is, see ``contract``): one engine call,
    where asking for the file until it appears cost a crowd of bundles starting at once hundreds of calls each.
    """
    archive = read_archive(client, bundle, contract.CA_CERT)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.extractfile(tar.getmembers()[0]).read()  # type: ignore[union-attr]


def _poll(client, bundle: str, slug: str, done, what: str, timeout: float, pause: float = 0.02,
          wake: threading.Event | None = None) -> None:
    """Call ``done`` until it is true, while the bundle runs, for at most ``timeout`` seconds.

    ``wake``: an event that ends each pause early (set when ``done`` may have become true).
    """
    api = client.api
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        if done():
            return
        tries += 1
        if tries % max(1, int(0.2 / pause)) == 0 and not api.inspect_container(bundle)["State"]["Running"]:
            break
        if wake is not None:
            wake.wait(pause)
        else:
            time.sleep(pause)
    output = api.logs(bundle, stdout=True, stderr=True)
    tail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
    raise BottleRuntimeError(f"the bundle of bottle {slug} did not {what}: {' | '.join(tail) or 'no output'}")


def files_tar(files: dict[str, bytes]) -> bytes:
    """A tar stream placing each ``{absolute path: bytes}`` read-only (mode 0444) under ``/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o444
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
