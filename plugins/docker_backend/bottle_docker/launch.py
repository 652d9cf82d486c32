"""Bringing a planned bottle up, and taking all of it down again.

Order: secrets read and images ensured (nothing exists yet if either fails);
the bottle network (and the shared outbound network, the first time); the
bundle (pinned IP on the bottle network, plus the outbound one), started first; the agent
(pinned IP, bottle network only) and the one-shot container that deletes its
default route; the bundle's packet filter, set by another one-shot container
in the bundle's network namespace. Teardown removes what was created,
whatever happened.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from bottle_core import agent as agent_sandbox
from bottle_core.bundle import contract
from bottle_core.bundle.logs import LogSink
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.signals import deferred

from . import engine, labels
from .container import DockerBottle, read_archive
from .network import SHARED_OUTBOUND, create_bottle_network, ensure_shared_outbound, readdress

NETWORK_ATTEMPTS = 4
#: IPv6 off in the agent, explicitly: no address, not even loopback's, and no IPv6 socket reaches anything.
AGENT_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
                 "net.ipv6.conf.lo.disable_ipv6": "1"}
LOG_DRAIN_TIMEOUT = 5.0


class DockerLaunch(AbstractContextManager):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan, images: dict[str, str] | None = None):
        self.plan = plan
        self.images = images
        self.client = engine.client()
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.bottle: DockerBottle | None = None
        self.log_follower: threading.Thread | None = None

    def __enter__(self) -> DockerBottle:
        try:
            self._start()
        except BaseException:
            self.teardown()
            raise
        return self.bottle  # type: ignore[return-value]

    def __exit__(self, *exc_info) -> None:
        self.teardown()

    # -- bring up ----------------------------------------------------------------

    def _start(self) -> None:
        from docker.errors import APIError, ImageNotFound

        plan = self.plan
        secrets = contract.secret_table(plan)  # before anything starts: a missing secret leaves nothing behind
        images = self.images or resolve_images(self.client, plan)
        try:
            if plan.network.outbound == SHARED_OUTBOUND:
                ensure_shared_outbound(self.client)
            self._create_network()
            with ThreadPoolExecutor(max_workers=1) as pool:
                bundle = self._create_bundle(images["bundle"], contract.bundle_files(plan, secrets))
                netfilter = self._create_netfilter(bundle, images["bundle"])
                # The proxy's start-up is the longest pole (~0.4 s to start a container here, then
                # the proxy's own start): set it going first, with its packet filter, and do the
                # agent's side meanwhile.
                bundle_started = pool.submit(self._start_bundle, bundle, netfilter)
                agent = self._create_agent(images["agent"])
                fixer = self._create_route_fixer(agent, images["bundle"])
                self.client.api.start(agent)
                self._drop_default_route(fixer)
                bundle_started.result()
                self._follow_bundle_logs(bundle)
        except ImageNotFound as exc:
            raise BottleRuntimeError(f"image missing: {exc.explanation}", hint="run `bottle image build`") from None
        except APIError as exc:
            raise BottleRuntimeError(f"the engine refused to start bottle {plan.slug}: {exc.explanation or exc}") from None
        self.bottle = DockerBottle(plan, self.client, agent_id=agent, bundle_id=bundle)

    def _create_network(self) -> None:
        """The bottle network; a subnet another bottle took since ``prepare`` moves the plan, it is no error."""
        from docker.errors import APIError

        plan, net = self.plan, self.plan.network
        for attempt in range(NETWORK_ATTEMPTS):
            try:
                create_bottle_network(self.client, net.name, net.subnet, labels.for_bottle(plan, "network"))
            except APIError as exc:
                if "overlap" not in str(exc).lower() or attempt == NETWORK_ATTEMPTS - 1:
                    raise
                readdress(self.client, plan)
                continue
            self.networks.append(net.name)
            return

    def _create_bundle(self, image: str, files: dict[str, bytes]) -> str:
        plan, net, api = self.plan, self.plan.network, self.client.api
        bundle = api.create_container(
            image, name=f"bottle-{plan.slug}-bundle", environment=contract.bundle_environment(),
            labels=labels.for_bottle(plan, "bundle"), detach=True,
            host_config=api.create_host_config(
                cap_drop=["ALL"], cap_add=contract.CAPABILITIES, security_opt=["no-new-privileges:true"], init=True,
                mem_limit=contract.LIMITS["memory_bytes"], memswap_limit=contract.LIMITS["memory_bytes"],
                pids_limit=contract.LIMITS["pids"], nano_cpus=int(contract.LIMITS["cpus"] * 1e9),
                sysctls=contract.SYSCTLS,
            ),
            networking_config=api.create_networking_config(
                {net.name: api.create_endpoint_config(ipv4_address=net.bundle_ip)}
            ),
        )["Id"]
        self.containers.append(bundle)
        api.connect_container_to_network(bundle, net.outbound)
        # Copied in before the bundle starts, never passed as environment (which `docker inspect` shows).
        api.put_archive(bundle, "/", _files_tar(files))
        return bundle

    def _create_agent(self, image: str) -> str:
        plan, api, res = self.plan, self.client.api, self.plan.resources
        agent = api.create_container(
            image, command=["sleep", "infinity"], name=f"bottle-{plan.slug}-agent",
            user=f"{plan.guest.uid}:{plan.guest.uid}", working_dir=plan.guest.workspace,
            environment=agent_sandbox.environment(plan), labels=labels.for_bottle(plan, "agent"), detach=True,
            host_config=api.create_host_config(
                cap_drop=["ALL"], security_opt=["no-new-privileges:true"], init=True,
                mem_limit=res.memory_bytes, memswap_limit=res.memory_bytes,
                nano_cpus=int(res.cpus * 1e9), pids_limit=res.pids,
                tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"},
                network_mode=plan.network.name,
                sysctls=AGENT_SYSCTLS,
                # Names are the proxy's business: the engine's resolver may only ever forward to the bundle,
                # which serves no DNS, so no lookup can carry data out (older engines forwarded from the host).
                dns=[plan.network.bundle_ip],
            ),
            networking_config=api.create_networking_config(
                {plan.network.name: api.create_endpoint_config(ipv4_address=plan.network.agent_ip)}
            ),
        )["Id"]
        self.containers.append(agent)
        return agent

    def _create_netfilter(self, bundle: str, image: str) -> str:
        """A one-shot container that will set the bundle's packet filter (see ``contract.NETFILTER_COMMAND``)."""
        api = self.client.api
        netfilter = api.create_container(
            image, command=contract.NETFILTER_COMMAND, user="0", name=f"bottle-{self.plan.slug}-netfilter",
            labels=labels.for_bottle(self.plan, "netfilter"), entrypoint=[],
            environment=contract.bundle_environment(),
            host_config=api.create_host_config(network_mode=f"container:{bundle}", cap_drop=["ALL"],
                                               cap_add=contract.NETFILTER_CAPABILITIES,
                                               security_opt=["no-new-privileges:true"]),
        )["Id"]
        self.containers.append(netfilter)
        api.put_archive(netfilter, "/", _files_tar(contract.netfilter_files(self.plan)))
        return netfilter

    def _start_bundle(self, bundle: str, netfilter: str) -> None:
        """Start the bundle, then set its packet filter (it needs the bundle's namespace to exist)."""
        self.client.api.start(bundle)
        self._run_one_shot(netfilter, "set the bundle's packet filter")

    def _run_one_shot(self, container: str, what: str) -> None:
        """Run a one-shot helper container to its end; fail with its words unless it exits 0."""
        api = self.client.api
        api.start(container)
        status = api.wait(container, timeout=30).get("StatusCode")
        if status != 0:
            words = api.logs(container).decode("utf-8", "replace").strip()
            raise BottleRuntimeError(f"could not {what} ({words or f'exit {status}'})")
        # Its work is done: remove it now, off the teardown's path (teardown still sweeps it if this loses).
        threading.Thread(target=remove_resources, args=(self.client, [container], []), daemon=True).start()

    def _create_route_fixer(self, agent: str, image: str) -> str:
        """A one-shot container that will delete the agent's default route (see ``_drop_default_route``)."""
        api = self.client.api
        fixer = api.create_container(
            image, command=["ip", "route", "del", "default"], user="0", name=f"bottle-{self.plan.slug}-netfix",
            labels=labels.for_bottle(self.plan, "netfix"), entrypoint=[],
            host_config=api.create_host_config(network_mode=f"container:{agent}", cap_drop=["ALL"],
                                               cap_add=["NET_ADMIN"], security_opt=["no-new-privileges:true"]),
        )["Id"]
        self.containers.append(fixer)
        return fixer

    def _drop_default_route(self, fixer: str) -> None:
        """Remove the agent's default route, so the bundle on its own subnet is all it can address.

        The engine gives every bridge network a gateway route, even an internal
        one whose gateway address exists nowhere. A one-shot container that
        shares the agent's network namespace (and alone holds NET_ADMIN) deletes
        it; the agent itself never has a capability.
        """
        self._run_one_shot(fixer, "remove the agent's default route")

    def _follow_bundle_logs(self, bundle: str) -> None:
        """File the bundle's output in the state dir while it runs (its logs outlive it there)."""
        stream = self.client.api.logs(bundle, stdout=True, stderr=True, stream=True, follow=True)

        def follow() -> None:
            sink = LogSink(self.plan.state_dir)
            try:
                sink.feed_stream(stream)
            except Exception:  # the engine closed the stream as the bundle went: nothing more to file
                pass
            finally:
                sink.close()

        self.log_follower = threading.Thread(target=follow, name=f"bundle-logs-{self.plan.slug}", daemon=True)
        self.log_follower.start()

    # -- tear down -----------------------------------------------------------------

    def teardown(self) -> None:
        """Remove every container and network this launch created, newest first; never raises."""
        with deferred():
            self._drain_bundle_logs()
            remove_resources(self.client, list(reversed(self.containers)), list(reversed(self.networks)))
        self.containers.clear()
        self.networks.clear()

    def _drain_bundle_logs(self) -> None:
        """Stop the bundle and let its last lines reach the state dir before it is removed."""
        if self.log_follower is None or self.bottle is None:
            return
        from docker.errors import APIError

        try:
            self.client.api.kill(self.bottle.bundle_id)
        except APIError:
            pass  # already stopped
        self.log_follower.join(LOG_DRAIN_TIMEOUT)
        self.log_follower = None


def remove_resources(client, containers: list[str], networks: list[str]) -> list[str]:
    """Force-remove containers, then networks; returns what was removed. Missing ones are fine."""
    from docker.errors import APIError, NotFound

    def remove(kind: str, name: str) -> str | None:
        try:
            if kind == "container":
                client.api.remove_container(name, force=True, v=True)
            else:
                client.api.remove_network(name)
        except (NotFound, APIError):
            return None  # already gone, or a removal in progress that gc will finish
        return f"{kind} {name[:12] if kind == 'container' else name}"

    # Containers first (a network with members cannot go), each group in parallel.
    removed = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        for kind, names in (("container", containers), ("network", networks)):
            removed += [r for r in pool.map(lambda n, k=kind: remove(k, n), names) if r]
    return removed


def resolve_images(client, plan: Plan) -> dict[str, str]:
    """The content-hash tags of the agent and bundle images, building them when missing."""
    from .images import ensure_images

    return ensure_images(client, plan.images["base"])


def wait_for_bundle(bottle: DockerBottle, timeout: float = contract.READY_TIMEOUT) -> None:
    """Until the bundle says its daemons accept connections; fail with its last words if it dies or stalls."""
    api = bottle.client.api
    _poll(bottle, lambda: contract.READY_LINE in api.logs(bottle.bundle_id, stdout=True, stderr=True), "become ready", timeout)


def bundle_ca(bottle: DockerBottle, timeout: float = contract.READY_TIMEOUT) -> bytes:
    """The bundle's CA certificate, as soon as the bundle has made it (the key stays in the bundle).

    The bundle writes it before its proxy starts, so the agent can be taught
    to trust it while the proxy is still starting up.
    """
    found: list[bytes] = []

    def fetched() -> bool:
        try:
            archive = read_archive(bottle.client, bottle.bundle_id, contract.CA_CERT)
        except BottleRuntimeError:
            return False
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            found.append(tar.extractfile(tar.getmembers()[0]).read())  # type: ignore[union-attr]
        return True

    _poll(bottle, fetched, "make its CA", timeout)
    return found[0]


def _poll(bottle: DockerBottle, done, what: str, timeout: float) -> None:
    """Call ``done`` until it is true, while the bundle runs, for at most ``timeout`` seconds."""
    api = bottle.client.api
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        if done():
            return
        tries += 1
        if tries % 10 == 0 and not api.inspect_container(bottle.bundle_id)["State"]["Running"]:
            break
        time.sleep(0.02)
    output = api.logs(bottle.bundle_id, stdout=True, stderr=True)
    tail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
    raise BottleRuntimeError(f"the bundle of bottle {bottle.plan.slug} did not {what}: {' | '.join(tail) or 'no output'}")


def _files_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o444
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
