"""The host side of the bundle's contract, shared by every backend.

A backend runs the bundle image (``bottle_core/bundle/image``) as follows:

* before it starts, the files of :func:`bundle_files` are placed at their
  paths (read-only; never passed as environment, which engines show);
* the container's own settings: it starts as root holding only the
  capabilities of :data:`CAPABILITIES` (the entrypoint starts each stage as
  its own user, then drops to the proxy's user: no process keeps a
  capability), no-new-privileges, the limits of :data:`LIMITS`, IPv6 off
  (:data:`SYSCTLS`);
* it is on the bottle network at ``plan.network.bundle_ip`` and on an
  outbound network; the ports of :func:`listening_ports` answer on the
  bottle-side address and nothing else does;
* once it runs, :data:`NETFILTER_COMMAND` runs once in its network namespace,
  from the bundle image but outside the bundle (root with
  :data:`NETFILTER_CAPABILITIES` alone, :data:`CONFIG` given as to the
  bundle), and must exit 0 before the agent is handed over: the packet
  filter that lets only the egress stage connect out, never to private or
  host addresses (see ``image/netfilter.py``);
* it prints :data:`READY_LINE` once on stdout when every daemon accepts
  connections, and exits non-zero (so the bottle fails visibly) if one dies;
* its CA certificate appears at :data:`CA_CERT` before the proxy accepts, so
  the agent can learn to trust it meanwhile; the private key never leaves;
* every line it prints on stdout goes to :class:`bottle_core.bundle.logs.LogSink`,
  which files the structured records by kind in the bottle's state dir.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import BottleRuntimeError
from ..plan import Plan

READY_LINE = b"bottle-bundle: ready"
READY_TIMEOUT = 60.0
CONFIG = "/etc/bottle/bundle.json"
SECRETS = "/etc/bottle/secrets.json"
UPSTREAM_CA = "/etc/bottle/upstream-ca.pem"
CA_CERT = "/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem"
#: Limits on the bundle container itself. Measured idle: ~75 MiB (mitmproxy ~45, squid ~26); ~90 MiB at the
#: peak of a 100 MB download (responses stream). Room is left for request bodies, which the proxy holds whole.
LIMITS = {"memory_bytes": 512 * 1024 * 1024, "pids": 256, "cpus": 1.0}
#: What the bundle starts with: enough to start each stage as its own user, nothing else.
CAPABILITIES = ["SETUID", "SETGID"]
#: IPv6 off in the bundle's network namespace (the packet filter drops it as well).
SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
           "net.ipv6.conf.lo.disable_ipv6": "1"}
#: The packet filter's one-shot command (bundle image, the bundle's network namespace, root).
NETFILTER_COMMAND = ["python3", "/opt/bottle/netfilter.py"]
#: All the packet filter's command needs (NET_RAW: the legacy iptables backend opens a raw socket).
NETFILTER_CAPABILITIES = ["NET_ADMIN", "NET_RAW"]


def image_context() -> Path:
    """The bundle image's build context folder (shipped as package data of bottle-core)."""
    return Path(__file__).resolve().parent / "image"


def listening_ports(plan: Plan) -> list[int]:
    """The ports that answer on the bundle's bottle-side address; every other port is closed."""
    return [plan.proxy.port]


def bundle_config(plan: Plan) -> dict:
    """What the daemons read from :data:`CONFIG`: the bundle's inner plans, nothing secret."""
    return {
        "slug": plan.slug,
        "proxy": plan.proxy.model_dump(),
        "egress": plan.egress.model_dump(),
        "listening_ports": listening_ports(plan),
        "git_gate": plan.git_gate.model_dump(),
        "supervise": plan.supervise.model_dump(),
        "secrets": SECRETS,
        "upstream_ca": UPSTREAM_CA if plan.proxy.upstream_ca_file else None,
    }


def bundle_files(plan: Plan, secrets: list[dict]) -> dict[str, bytes]:
    """Every file the bundle is given before it starts, by absolute path in the bundle.

    :param secrets: the :func:`secret_table`, read before anything was
        started so a missing secret leaves nothing behind.
    """
    files = {CONFIG: json.dumps(bundle_config(plan), indent=2).encode(), SECRETS: json.dumps(secrets).encode()}
    if plan.proxy.upstream_ca_file:
        try:
            files[UPSTREAM_CA] = Path(plan.proxy.upstream_ca_file).read_bytes()
        except OSError as exc:
            raise BottleRuntimeError(f"BOTTLE_UPSTREAM_CA_FILE: cannot read {plan.proxy.upstream_ca_file}: "
                                     f"{exc.strerror}") from None
    return files


def netfilter_files(plan: Plan) -> dict[str, bytes]:
    """The files the packet filter's command is given: the configuration alone (no secrets)."""
    return {CONFIG: json.dumps(bundle_config(plan), indent=2).encode()}


def bundle_environment() -> dict[str, str]:
    """The bundle's environment: only where its configuration lies (the rest is in the file)."""
    return {"BOTTLE_BUNDLE_CONFIG": CONFIG}


def secret_table(plan: Plan) -> list[dict]:
    """The secrets the proxy swaps in, read on the host now; a declared secret with no value is an error."""
    table = []
    for secret in plan.secrets:
        value = secret.value()
        if value is None:
            if secret.optional:
                continue
            source = f"host variable {secret.from_env}" if secret.from_env else f"file {secret.from_file}"
            raise BottleRuntimeError(f"secret {secret.name}: {source} has no value",
                                     hint="set it, or remove the secret from the manifest")
        table.append({"name": secret.name, "placeholder": secret.placeholder, "value": value, "hosts": secret.hosts})
    return table
