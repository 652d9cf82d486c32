"""A stand-in internet on this machine, shared by the integration tests and ``make demo``.

An internal Docker network (nothing on it is routed off the machine), server
containers of the test-server image joined to it under the names they answer
as, and a throwaway CA whose certificates they serve. No pytest here: the
tests' fixtures and the demo script both build on it.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

#: How long a server may take to print its ready line.
READY_TIMEOUT = 60.0


class ServerNotReady(Exception):
    """A server container ended, or never printed its ready line; the message carries its output."""


class CertAuthority:
    """A throwaway CA (``trustme``) that writes its PEM and the certificates it issues to files."""

    def __init__(self, directory: Path):
        import trustme

        self.ca = trustme.CA()
        self.directory = directory
        self.pem_path = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.pem_path))
        self.pem_path.chmod(0o644)

    def issue(self, *names: str, directory: Path | None = None) -> tuple[Path, Path]:
        """Issue a server certificate for ``names``; returns (certificate chain PEM, key PEM)."""
        directory = directory or self.directory
        directory.mkdir(parents=True, exist_ok=True)
        cert = self.ca.issue_cert(*names)
        stem = names[0].replace("*", "_")
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        with open(cert_path, "wb") as handle:
            for blob in cert.cert_chain_pems:
                handle.write(blob.bytes())
        cert.private_key_pem.write_to_path(str(key_path))
        # The servers run as root in their containers, but keep the files readable for any uid.
        cert_path.chmod(0o644)
        key_path.chmod(0o644)
        return cert_path, key_path

    def write_pem(self, path: Path) -> Path:
        """Write the CA certificate to ``path`` (for a trust store or ``NODE_EXTRA_CA_CERTS``)."""
        self.ca.cert_pem.write_to_path(str(path))
        return path


def remove_quietly(resource) -> None:
    """Remove a container (forced) or network; one already gone is fine."""
    import docker.errors
    from docker.models.containers import Container

    try:
        if isinstance(resource, Container):
            resource.remove(force=True)
        else:
            resource.remove()
    except docker.errors.NotFound:
        pass


class Internet:
    """The stand-in internet: an internal network the servers (and a bottle's bundle) join.

    :param labels: put on the network and on every container started here, so
        a crashed run's leftovers can be found and swept.
    """

    def __init__(self, client, network, image: str, labels: dict[str, str]):
        self.client = client
        self.network = network
        self.name = network.name
        self.image = image
        self.labels = labels

    @classmethod
    def create(cls, client, image: str, labels: dict[str, str], prefix: str = "bottle-test-internet") -> Internet:
        """A new internal network named ``<prefix>-<random>``."""
        network = client.networks.create(f"{prefix}-{secrets.token_hex(4)}", driver="bridge", internal=True,
                                          labels=labels, check_duplicate=True)
        return cls(client, network, image, labels)

    def start(self, name: str, command: list[str], *, aliases=(), environment=None, binds=None):
        """Start a detached container of the test-server image on this network."""
        api = self.client.api
        networking = api.create_networking_config({self.name: api.create_endpoint_config(aliases=list(aliases))})
        # The embedded DNS still answers the network's aliases; names it would forward elsewhere go to
        # the container's own loopback, where nothing answers, so no lookup leaves the machine.
        host_config = api.create_host_config(binds=binds or {}, network_mode=self.name, dns=["127.0.0.1"])
        created = api.create_container(
            self.image, command, name=name, labels=self.labels, environment=environment or {},
            host_config=host_config, networking_config=networking, detach=True,
        )
        container = self.client.containers.get(created["Id"])
        container.start()
        return container

    @property
    def subnet(self) -> str:
        """The network's IPv4 subnet (CIDR): private, so bottles reach it only by opting it in."""
        self.network.reload()
        return next(c["Subnet"] for c in self.network.attrs["IPAM"]["Config"] if ":" not in c["Subnet"])

    def ip_of(self, container) -> str:
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.name]["IPAddress"]

    def close(self, *, release=None) -> None:
        """Remove the network, and first what is still attached: our own containers are removed, others
        handed to ``release(container)`` (a bottle's bundle: its own stop), or disconnected."""
        import docker.errors

        # A bottle's own removal runs on after it returned, so an endpoint can still be leaving: look again,
        # a bounded number of times, until the network is empty enough to remove.
        for attempt in range(20):
            self.network.reload()
            for container_id in list(self.network.attrs.get("Containers") or {}):
                try:
                    container = self.client.containers.get(container_id)
                    if all(container.labels.get(k) == v for k, v in self.labels.items()):
                        remove_quietly(container)
                    elif release is not None and attempt == 0:
                        release(container)
                    else:
                        self.network.disconnect(container_id, force=True)
                except Exception:  # noqa: BLE001 - best effort before the removal that matters
                    pass
            try:
                remove_quietly(self.network)
                return
            except docker.errors.APIError:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def wait_until_listening(container, marker: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll a server container's output for its ready line; raise ServerNotReady if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = container.logs().decode("utf-8", "replace")
        if marker in output:
            return
        container.reload()
        if container.status in ("exited", "dead"):
            raise ServerNotReady(f"{container.name} exited before it was ready:\n{output}")
        time.sleep(0.1)
    raise ServerNotReady(f"{container.name} not ready after {timeout:.0f}s:\n{container.logs().decode()}")
