"""The host side of the bundle's contract, shared by every backend.

A backend runs the bundle image (``bottle_core/bundle/image``) as follows:

* before it starts, the files of :func:`bundle_files` are placed at their
  paths (read-only; never passed as environment, which engines show);
* the container's own settings: the image's user (root), every capability
  dropped but :data:`CAPABILITIES` (the entry point uses them only to start
  each daemon as its own non-root user, with none left), no-new-privileges,
  the limits of :data:`LIMITS`, IPv6 off (:data:`SYSCTLS`);
* the host folders of :func:`bundle_mounts` are mounted at their paths (the
  git gate's upstream repositories on the host);
* it is on the bottle network at ``plan.network.bundle_ip`` and on an
  outbound network; the ports of :func:`listening_ports` answer on the
  bottle-side address and nothing else does;
* once it runs, :data:`NETFILTER_COMMAND` runs once in its network namespace,
  from the bundle image but outside the bundle (root with
  :data:`NETFILTER_CAPABILITIES` alone, :data:`CONFIG` given as to the
  bundle), and must exit 0 before any command runs in the agent (files may
  be placed meanwhile): the packet
  filter that lets only the egress stage connect out, never to private or
  host addresses (see ``image/netfilter.py``);
* it prints :data:`READY_LINE` once on stdout when every daemon listens on
  its address, and exits non-zero (so the bottle fails visibly) if one dies;
* its CA certificate appears at :data:`CA_CERT` before it prints
  :data:`READY_LINE` and before the proxy serves, so the agent can learn to
  trust it meanwhile; the private key never leaves;
* every line it prints on stdout goes to :class:`bottle_core.bundle.logs.LogSink`,
  which files the structured records by kind in the bottle's state dir;
* on SIGTERM it prints :data:`STOPPED_LINE` first, then stops: what it printed
  before is all there is to file, so a backend may stop reading there.

A backend that keeps a warm pool (docs/pool.md) starts a bundle given only
:func:`pooled_files` (its configuration and :data:`POOLED`; no secret): it
makes its CA, starts its slow daemon (the proxy; the git gate and the
supervisor start on their first connection), which waits before it reads
anything, and prints :data:`POOLED_LINE`. When a run claims it, the backend places that run's
:func:`bundle_files` and then :data:`CLAIMED` (one tar stream, that file
last), then sends it ``SIGUSR1`` (``image.pooled.CLAIM_SIGNAL``; without
it the bundle finds the file within a second); the bundle reads its
configuration again, lets the waiting daemons go, starts the rest and
prints :data:`READY_LINE` as above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import BottleRuntimeError
from ..plan import Plan
from .image.daemons import bottle_side_ports

READY_LINE = b"bottle-bundle: ready"
#: Printed first on SIGTERM: the end of what there is to file.
STOPPED_LINE = b"bottle-bundle: stopped"
#: A pooled bundle's: its CA made and its proxy started, waiting for a run's configuration.
POOLED_LINE = b"bottle-bundle: pooled"
#: Present in a bundle started for a warm pool (from :func:`pooled_files`).
POOLED = "/etc/bottle/pooled"
#: Placed last when a run claims a pooled bundle: its configuration, secrets and the rest are in place.
CLAIMED = "/etc/bottle/claimed"
#: Longer than the bundle's own bound (its entry point's), so the bundle says what it waited for.
READY_TIMEOUT = 180.0
CONFIG = "/etc/bottle/bundle.json"
SECRETS = "/etc/bottle/secrets.json"
UPSTREAM_CA = "/etc/bottle/upstream-ca.pem"
GIT_TOKENS = "/etc/bottle/git-tokens.json"
#: Where a path upstream of the git gate appears in the bundle (``<root>/<remote name>``).
GIT_UPSTREAMS = "/srv/upstream"
#: The only capabilities the bundle keeps: its entry point starts each daemon as its own user with none.
CAPABILITIES = ["SETUID", "SETGID", "SETPCAP"]
MODEL_SCRIPT = "/etc/bottle/model-script.json"
#: The command (run in the bundle by the backend's ``exec_in_bundle``) that reaches the supervisor's control socket.
SUPERVISE_CTL = ["python3", "-m", "bottle_core.bundle.image.supervise_ctl"]
CA_CERT = "/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem"
#: Limits on the bundle container itself. Measured idle: ~98 MiB (mitmproxy, squid ~26, git gate, supervisor);
#: ~118 MiB at the peak of a 100 MB download (responses stream). Room is left for request bodies and small
#: responses, which the proxy holds whole.
LIMITS = {"memory_bytes": 512 * 1024 * 1024, "pids": 256, "cpus": 1.0}
#: IPv6 off in the bundle's network namespace (the packet filter drops it as well).
SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
           "net.ipv6.conf.lo.disable_ipv6": "1"}
#: The packet filter's one-shot command (bundle image, the bundle's network namespace, root).
NETFILTER_COMMAND = ["python3", "-m", "bottle_core.bundle.image.netfilter"]
#: All the packet filter's command needs (NET_RAW: the legacy iptables backend opens a raw socket).
NETFILTER_CAPABILITIES = ["NET_ADMIN", "NET_RAW"]


def image_context() -> Path:
    """The bundle image's build context folder (shipped as package data of bottle-core)."""
    return Path(__file__).resolve().parent / "image"


def listening_ports(plan: Plan) -> list[int]:
    """The ports that answer on the bundle's bottle-side address (its daemon table's bottle-side rows); every
    other port is closed."""
    return bottle_side_ports(bundle_config(plan))


@dataclass(frozen=True)
class Mount:
    """A host folder the bundle is given at ``bundle_path``."""

    host_path: str
    bundle_path: str
    read_only: bool


def bundle_mounts(plan: Plan) -> list[Mount]:
    """The host folders the bundle needs: the git dir of each path upstream of the gate (writable: pushes land there).

    Only the git directory is given, never a working tree; the gate runs as
    the directory's owner (``plan.git_gate.run_as``), so no permission on
    the host is changed.
    """
    return [Mount(remote.git_dir, f"{GIT_UPSTREAMS}/{name}", read_only=False)
            for name, remote in plan.git_gate.remotes.items() if remote.kind == "path" and remote.git_dir]


def git_tokens(plan: Plan) -> dict[str, dict]:
    """Each https upstream's credential, read on the host now (held by the bundle only); a named one missing is an error."""
    tokens = {}
    for name, remote in plan.git_gate.remotes.items():
        if remote.kind != "https" or not (remote.token_env or remote.token_file):
            continue
        value = remote.token()
        if not value:
            source = f"host variable {remote.token_env}" if remote.token_env else f"file {remote.token_file}"
            raise BottleRuntimeError(f"git remote {name}: {source} has no token",
                                     hint="set it, or remove token_env/token_file from the remote")
        tokens[name] = {"user": remote.token_user, "token": value}
    return tokens


def bundle_config(plan: Plan) -> dict:
    """What the daemons read from :data:`CONFIG`: the bundle's inner plans, nothing secret."""
    return {
        "slug": plan.slug,
        "proxy": plan.proxy.model_dump(),
        "egress": plan.egress.model_dump(),
        "git_gate": plan.git_gate.model_dump(),
        "supervise": {**plan.supervise.model_dump(), "listen_host": plan.network.bundle_ip,
                      "workspace": plan.guest.workspace, "home": plan.guest.home},
        "scripted_model": {"script": MODEL_SCRIPT, "port": plan.scripted_model.port} if plan.scripted_model else None,
        "secrets": SECRETS,
        "git_tokens": GIT_TOKENS,
        "git_upstreams": GIT_UPSTREAMS,
        "upstream_ca": UPSTREAM_CA if plan.proxy.upstream_ca_file else None,
    }


def bundle_files(plan: Plan, secrets: list[dict]) -> dict[str, bytes]:
    """Every file the bundle is given before it starts, by absolute path in the bundle.

    :param secrets: the :func:`secret_table`, read before anything was
        started so a missing secret leaves nothing behind.
    """
    files = {CONFIG: json.dumps(bundle_config(plan), indent=2).encode(), SECRETS: json.dumps(secrets).encode(),
             GIT_TOKENS: json.dumps(git_tokens(plan)).encode()}
    if plan.scripted_model:
        files[MODEL_SCRIPT] = read_model_script(plan.scripted_model.script_file)
    if plan.proxy.upstream_ca_file:
        try:
            files[UPSTREAM_CA] = Path(plan.proxy.upstream_ca_file).read_bytes()
        except OSError as exc:
            raise BottleRuntimeError(f"BOTTLE_UPSTREAM_CA_FILE: cannot read {plan.proxy.upstream_ca_file}: "
                                     f"{exc.strerror}") from None
    return files


def pooled_files(plan: Plan) -> dict[str, bytes]:
    """What a bundle started for a warm pool is given: its configuration and the pooled marker, nothing secret.

    The upstream CA (a public certificate) comes now, since the proxy starts
    with it; secrets, git tokens and a model script only come with a claim.
    """
    files = {CONFIG: json.dumps(bundle_config(plan), indent=2).encode(), POOLED: b""}
    if plan.proxy.upstream_ca_file:
        files[UPSTREAM_CA] = upstream_ca_bytes(plan)
    return files


def claim_files(plan: Plan, secrets: list[dict]) -> dict[str, bytes]:
    """What a run places in the pooled bundle it claims: every :func:`bundle_files` file, then :data:`CLAIMED`."""
    return {**bundle_files(plan, secrets), CLAIMED: b""}


def upstream_ca_bytes(plan: Plan) -> bytes:
    """The bytes of the upstream CA file the plan names, or a clear error naming the setting."""
    try:
        return Path(plan.proxy.upstream_ca_file).read_bytes()  # type: ignore[arg-type]
    except OSError as exc:
        raise BottleRuntimeError(f"BOTTLE_UPSTREAM_CA_FILE: cannot read {plan.proxy.upstream_ca_file}: "
                                 f"{exc.strerror}") from None


def netfilter_files(plan: Plan) -> dict[str, bytes]:
    """The files the packet filter's command is given: the configuration alone (no secrets)."""
    return {CONFIG: json.dumps(bundle_config(plan), indent=2).encode()}


def read_model_script(path: str) -> bytes:
    """A ``--model-script`` file's bytes, checked: a clear error naming the file when it will not play."""
    from .image.model_server import check_script

    try:
        data = Path(path).read_bytes()
        problem = check_script(json.loads(data))
    except OSError as exc:
        problem = f"cannot read it: {exc.strerror}"
    except ValueError as exc:
        problem = f"not JSON: {exc}"
    if problem:
        raise BottleRuntimeError(f"--model-script {path}: {problem}",
                                 hint='write a JSON list of replies, e.g. ["hello", {"tool_use": {"name": "Bash", '
                                      '"input": {"command": "ls"}}}]; see docs/rehearse.md')
    return data


def bundle_environment() -> dict[str, str]:
    """The bundle's environment: only where its configuration lies (the rest is in the file)."""
    return {"BOTTLE_BUNDLE_CONFIG": CONFIG}


def secret_table(plan: Plan) -> list[dict]:
    """The secrets the proxy swaps in, read on the host now; a declared secret with no value is an error."""
    table = []
    for secret in plan.secrets:
        value = secret.value()
        if secret.optional and plan.scripted_model:
            continue  # a rehearsal talks to the script, which needs no key
        if value is None:
            if secret.optional:
                continue
            from ..errors import ManifestError

            key, said = (("from_env", f"host variable {secret.from_env} is not set") if secret.from_env else
                         ("from_file", f"file {secret.from_file} cannot be read"))
            raise ManifestError(plan.manifest, f"secret {secret.name}: {said}, so it has no value",
                                field=f"bottles.{plan.bottle}.secrets.{secret.name}.{key}",
                                hint="set it, or remove the secret from the manifest")
        table.append({"name": secret.name, "placeholder": secret.placeholder, "value": value, "hosts": secret.hosts,
                      "swap_in": secret.swap_in})
    return table
