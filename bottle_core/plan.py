"""The Plan: everything resolved before anything starts.

A Plan is made by the selected backend's ``prepare`` hook and is final when
``prepare`` returns: nothing renames or rewrites it afterwards (a backend that
must change something at launch hands over a new Plan, saved again). bottle
writes it with :func:`stage` as ``plan.json`` in the bottle's host state dir
(``bottle plan`` only prints it and writes nothing). Backends put what only
they understand in ``backend_options``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import settings
from .addressing import PRIVATE_NETWORKS
from .errors import BottleRuntimeError
from .manifest import MODEL_KEY, memory_bytes
from .spec import BottleSpec

PLAN_VERSION = 1
#: Written into a bottle's state dir when its run has ended.
FINISHED = "finished"
#: In the state dir of a warm pool's bottle that no run has claimed (yet): `bottle logs AGENT` passes it by.
UNCLAIMED = "unclaimed"
#: The host copy of the agent's prompt, in its state dir (mode 0600; removed when the run ends).
PROMPT_FILE = "prompt.md"
#: How long the state (plan and logs) of an ended bottle is kept before ``bottle gc`` removes it.
DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_MODEL_HOST = "api.anthropic.com"


class PlanModel(BaseModel):
    """Base of the plan models: unknown keys are refused so a stale plan fails loudly."""

    model_config = ConfigDict(extra="forbid")


class Resources(PlanModel):
    """Limits applied to the agent sandbox."""

    cpus: float = Field(description="CPU limit in cores.")
    memory_bytes: int = Field(description="Memory limit in bytes.")
    pids: int = Field(description="Process limit.")


class NetworkPlan(PlanModel):
    """The bottle network: only the agent and the bundle are on it."""

    name: str = Field(description="Engine name of the bottle network.")
    subnet: str = Field(description="IPv4 subnet of the bottle network, CIDR.")
    bundle_ip: str = Field(description="The bundle's pinned address on the bottle network.")
    agent_ip: str | None = Field(default=None, description="The agent's pinned address, when the backend pins it.")
    outbound: str = Field(description="Network the bundle uses to reach the outside; shared, never removed by a bottle.")

    @model_validator(mode="after")
    def _ip_in_subnet(self) -> NetworkPlan:
        if ipaddress.ip_address(self.bundle_ip) not in ipaddress.ip_network(self.subnet):
            raise ValueError(f"bundle_ip {self.bundle_ip} is not inside {self.subnet}")
        return self


class ProxyPlan(PlanModel):
    """The bundle's TLS-inspecting HTTP(S) proxy, the agent's only way out."""

    listen_host: str = Field(description="Address the proxy binds: the bundle's bottle-side IP.")
    port: int = Field(default=8080, description="Proxy port.")
    model_host: str = Field(default=DEFAULT_MODEL_HOST, description="The model API host, always allowed.")
    upstream_ca_file: str | None = Field(
        default=None, description="Host file of extra CA certificates the proxy trusts for upstream servers."
    )

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"


class EgressPlan(PlanModel):
    """The allow-list the proxy enforces, and where the egress stage (loopback in the bundle) may connect."""

    listen: str = Field(default="127.0.0.1", description="Loopback address of the egress stage.")
    port: int = Field(default=3128, description="Port of the egress stage on loopback.")
    allow: list[str] = Field(default_factory=list,
                             description="Allow-list entries (docs/egress.md), the model host included.")
    responses: str = Field(default="block", description="block, warn or off: what a response read as injection gets.")
    allow_private: list[str] = Field(
        default_factory=list, description="Private CIDRs the bottle opted in: allowed names may resolve there.")
    refused_networks: list[str] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        description="Resolved addresses refused unless opted in: private ranges and the engine's networks.")
    host_addresses: list[str] = Field(
        default_factory=list, description="The engine host's own addresses: refused always, opted in or not.")
    websockets: list[str] = Field(default_factory=list, description="Hosts the agent may open WebSockets to.")
    model_server_tools: list[str] = Field(
        default_factory=list, description="Model API server tools allowed beyond the default (web_search).")


class GitGateRemote(PlanModel):
    """One upstream behind the git gate, and the policy the gate applies to pushes to it."""

    url: str = Field(description="The upstream as the manifest gave it (a host path or an https:// URL).")
    kind: Literal["path", "https"] = Field(default="https", description="A repository on the host, or an https URL.")
    git_dir: str | None = Field(default=None, description="Host git directory of a path upstream (given to the bundle).")
    bare: bool = Field(default=True, description="False for a path upstream with a working tree (its checked-out "
                       "branches are never updated).")
    owner_uid: int | None = Field(default=None, description="Owner of a path upstream: the gate writes to it as them.")
    owner_gid: int | None = None
    push_allow: list[str]
    protected: list[str]
    max_bytes: int = Field(default=100 * 1024**2, description="Largest push accepted, in bytes of received objects.")
    token_env: str | None = Field(default=None, description="Host variable holding the token (the value is never here).")
    token_file: str | None = Field(default=None, description="Host file holding the token.")
    token_user: str = "x-access-token"

    def token(self) -> str | None:
        """The https upstream's token, read on the host when the bottle launches; never stored in the plan."""
        if self.token_env:
            return os.environ.get(self.token_env)
        if self.token_file:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError:
                return None
        return None


class GitGatePlan(PlanModel):
    """The git gate: smart-HTTP git on the bundle; pushes upstream with credentials held there."""

    port: int = Field(default=9418, description="Gate port on the bundle's bottle-side IP.")
    remotes: dict[str, GitGateRemote] = Field(default_factory=dict)
    run_as: tuple[int, int] | None = Field(
        default=None, description="uid and gid the gate runs as: the owner of its path upstreams (default: the "
        "bundle's own user).")
    author_name: str | None = Field(default=None, description="user.name in the bottle.")
    author_email: str | None = Field(default=None, description="user.email in the bottle.")
    include_ignored: bool = Field(default=False, description="Copy files git ignores into the workspace too.")


class SupervisePlan(PlanModel):
    """The supervisor: where Claude Code's hook events go, and the policy it applies to them."""

    mode: str = Field(default="audit", description="off, audit or enforce (see the manifest's supervise table).")
    port: int = Field(default=9090, description="Supervisor port on the bundle's bottle-side IP.")
    deny: list[str] = Field(default_factory=list, description="Permission rules refused.")
    ask: list[str] = Field(default_factory=list, description="Permission rules held for approval.")
    allow: list[str] = Field(default_factory=list, description="Permission rules allowed.")
    default: str = Field(default="allow", description="Decision when no rule matches.")
    ask_timeout: float = Field(default=300.0, description="Seconds an asked call waits before it is denied.")

    @property
    def active(self) -> bool:
        return self.mode != "off"


class ScriptedModelPlan(PlanModel):
    """A scripted Messages API server in the bundle standing in for the model host (``--model-script``)."""

    script_file: str = Field(description="Host file of the script: a JSON list of replies.")
    port: int = Field(default=8099, description="Its port on the bundle's loopback; the proxy sends model requests there.")


class SkillPlan(PlanModel):
    """A skill folder to copy in."""

    name: str
    source: str = Field(description="Host folder of the skill.")


class SecretPlan(PlanModel):
    """A secret as the bottle sees it: a placeholder, bound to its hosts. The value is never in the plan."""

    name: str
    placeholder: str
    hosts: list[str]
    from_env: str | None = None
    from_file: str | None = None
    from_claude_login: str | None = Field(
        default=None, description="Host file of a Claude Code login; its access token is the value.")
    swap_in: list[str] = Field(default_factory=lambda: ["header"], description="Where the value is swapped in.")
    optional: bool = Field(default=False, description="True when a missing value is no error (the model key).")

    def value(self) -> str | None:
        """The real value, read on the host when the bottle launches; never stored in the plan.

        One trailing line end is dropped; a value still holding a line end or
        NUL is refused (it would split a header), naming the secret.
        """
        if self.from_env is not None:
            value = os.environ.get(self.from_env)
        elif self.from_claude_login is not None:
            from .claude_login import access_token

            value = access_token(Path(self.from_claude_login))
        else:
            try:
                value = Path(self.from_file).read_text(encoding="utf-8")  # type: ignore[arg-type]
            except (OSError, UnicodeDecodeError):
                return None
            value = value.removesuffix("\n").removesuffix("\r")
        if value is not None and any(char in value for char in "\r\n\0"):
            from .errors import BottleRuntimeError

            source = f"host variable {self.from_env}" if self.from_env else f"file {self.from_file}"
            raise BottleRuntimeError(f"secret {self.name}: the value in {source} holds a line break or NUL character",
                                     hint="a secret is one line; remove the extra lines")
        return value


class WorkspacePlan(PlanModel):
    """What the workspace copy leaves out and keeps (patterns; see bottle_core.workspace)."""

    exclude: list[str] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)


class GuestPaths(PlanModel):
    """Where things live inside the agent sandbox."""

    user: str = "agent"
    uid: int = 1000
    home: str = "/home/agent"
    workspace: str = "/workspace"
    prompt_file: str = "/home/agent/.bottle/prompt.md"
    skills_dir: str = "/home/agent/.claude/skills"
    ca_cert: str = "/usr/local/share/ca-certificates/bottle-ca.crt"
    ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt"


class Plan(PlanModel):
    """Everything one bottle run needs, resolved before anything starts."""

    version: int = PLAN_VERSION
    slug: str = Field(description="Unique name of this bottle run; labels every resource.")
    agent: str
    bottle: str
    backend: str
    created_at: float = Field(description="Unix time the plan was made.")
    manifest: str = Field(description="The manifest the plan came from.")
    state_dir: str = Field(description="Host state dir: plan.json, prompt file (during the run), logs (kept after it).")
    cwd: str = Field(description="The user's directory when the plan was made.")
    copy_cwd: bool
    images: dict[str, str] = Field(description="Image names by role (agent, bundle) and their bases (base: the "
                                   "agent's, bundle_base: the bundle's, always the user's own).")
    network: NetworkPlan
    proxy: ProxyPlan
    egress: EgressPlan
    git_gate: GitGatePlan
    supervise: SupervisePlan
    scripted_model: ScriptedModelPlan | None = Field(
        default=None, description="Set by --model-script: the model host is answered by a script, never contacted.")
    guest: GuestPaths = Field(default_factory=GuestPaths)
    resources: Resources
    prompt_file: str | None = Field(
        description="Host copy of the prompt (mode 0600, written when the bottle is staged), None when the prompt is empty.")
    skills: list[SkillPlan] = Field(default_factory=list)
    secrets: list[SecretPlan] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra agent environment from the manifest.")
    workspace: WorkspacePlan = Field(default_factory=WorkspacePlan, description="The workspace copy's filter.")
    model: str | None = None
    claude_args: list[str] = Field(default_factory=list)
    backend_options: dict[str, Any] = Field(default_factory=dict)

    @property
    def has_prompt(self) -> bool:
        return self.prompt_file is not None

    def save(self) -> Path:
        """Write plan.json into the (existing) state dir, mode 0600, and return its path."""
        path = Path(self.state_dir) / "plan.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, path: str | Path) -> Plan:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def stage(plan: Plan, prompt: str) -> Path:
    """Create the plan's state dir (mode 0700) with its logs folder, the prompt file (0600) and plan.json.

    :param prompt: the agent's prompt text; written when ``plan.prompt_file`` is set.
    :return: the path of plan.json.
    """
    state_dir = Path(plan.state_dir)
    state_dir.mkdir(parents=True, mode=0o700)
    (state_dir / "logs").mkdir(mode=0o700)
    if plan.prompt_file:
        fd = os.open(plan.prompt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(prompt)
    return plan.save()


def resources_of(bottle: Any) -> Resources:
    """The limits of a manifest bottle definition, as the Plan records them."""
    return Resources(cpus=bottle.cpus, memory_bytes=memory_bytes(bottle.memory), pids=bottle.pids)


def state_root() -> Path:
    """``$XDG_STATE_HOME/bottle`` (default ``~/.local/state/bottle``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bottle"


def mark_ended(state_dir: str | Path) -> None:
    """A bottle's run is over: its prompt copy goes, the end time is written (its retention starts then).

    The first end counts: a later sweep of the same bottle does not restart the retention.
    """
    state = Path(state_dir)
    if not state.is_dir():
        return
    (state / PROMPT_FILE).unlink(missing_ok=True)
    marker = state / FINISHED
    if not marker.exists():
        marker.write_text(f"{time.time():.3f}\n", encoding="utf-8")


def prune_state_dirs(active: set[str], *, older_than: float = DEFAULT_RETENTION_DAYS * 86400) -> list[Path]:
    """Remove state dirs (plan, logs) of bottles that are not running and were last used over ``older_than`` s ago.

    "Last used" is when the run ended, or for a bottle that never said so (a
    crash), when its state dir last changed.
    """
    import shutil

    removed = []
    root = state_root()
    if not root.is_dir():
        return removed
    now = time.time()
    for path in root.iterdir():
        if not path.is_dir() or path.name in active:
            continue
        marker = path / FINISHED
        if marker.exists():
            age, limit = now - marker.stat().st_mtime, older_than
        else:  # never ended: a crash, or a bottle being launched right now (give that ten minutes)
            age, limit = now - path.stat().st_mtime, max(older_than, 600.0)
        if age > limit:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def placeholder(name: str) -> str:
    """What the agent sees instead of a secret's value: unique per run, recognisable in the proxy."""
    return f"bottle-placeholder-{name.lower().replace('_', '-')}-{secrets.token_hex(12)}"


#: Tries at a slug no earlier run's state folder holds (each a 32-bit draw: a second try is already rare).
SLUG_TRIES = 8


def new_slug(agent: str, stage_dir: str | Path | None = None) -> str:
    """A unique, engine-safe name for one run of ``agent``, not taken by a state folder in ``stage_dir``
    (the folders of earlier runs stay for ``bottle logs``)."""
    for _ in range(SLUG_TRIES):
        slug = f"{agent[:24]}-{secrets.token_hex(4)}"
        if stage_dir is None or not (Path(stage_dir) / slug).exists():
            return slug
    raise BottleRuntimeError(f"no free name for a run of {agent} in {stage_dir} after {SLUG_TRIES} tries",
                             hint="remove old runs' folders there (they hold only their logs)")


def model_secret(model_host: str) -> SecretPlan:
    """The model credential, a secret like any other: the agent holds a placeholder, the proxy the value.

    The host's ``ANTHROPIC_API_KEY`` when set; else its Claude Code login when it has one
    (``CLAUDE_CODE_OAUTH_TOKEN`` in the agent); else the key, marked optional, for `bottle run` to report.
    """
    from .claude_login import OAUTH_TOKEN, credentials_path, has_login

    if not os.environ.get(MODEL_KEY) and has_login():
        return SecretPlan(name=OAUTH_TOKEN, placeholder=placeholder(OAUTH_TOKEN), hosts=[model_host],
                          from_claude_login=str(credentials_path()))
    return SecretPlan(name=MODEL_KEY, placeholder=placeholder(MODEL_KEY), hosts=[model_host], from_env=MODEL_KEY,
                      optional=True)


def base_plan(spec: BottleSpec, *, backend: str, stage_dir: Path, network: NetworkPlan,
              images: dict[str, str], backend_options: dict[str, Any] | None = None,
              slug: str | None = None, unapplied: Mapping[str, str] | None = None) -> Plan:
    """The whole Plan, from the spec and what the backend resolved itself (network, images, options).

    Backends call this from ``prepare`` so every backend lays out state and
    guest paths alike. Names that carry the slug are made first: a backend
    calls :func:`new_slug` and passes ``slug``, so nothing is renamed after.
    Nothing is written to disk here (see :func:`stage`).

    :param unapplied: the bottle's fields this backend does not apply as written (``{"pids": "why"}``);
        a bottle that sets one gets a warning on stderr naming the field, so no setting is dropped unsaid.
    """
    manifest = spec.manifest
    agent = manifest.agent(spec.agent)
    bottle = manifest.bottles[agent.bottle]
    warn_unapplied(agent.bottle, bottle, backend, unapplied or {})
    if spec.copy_cwd:
        _warn_kept_git_config(agent.bottle, bottle, Path(spec.cwd))
    slug = slug or new_slug(spec.agent, stage_dir)
    state_dir = Path(stage_dir) / slug

    config = settings.current()
    guest = GuestPaths(skills_dir=config.guest_skills_dir or GuestPaths().skills_dir)
    prompt_file = str(state_dir / PROMPT_FILE) if manifest.prompt_text(spec.agent).strip() else None

    model_host = config.model_host or DEFAULT_MODEL_HOST
    allow = sorted({model_host, *bottle.egress.allow})
    check_hosts_allowed(manifest, agent.bottle, bottle, allow)
    secret_plans = [
        SecretPlan(name=name, placeholder=placeholder(name), hosts=s.hosts, from_env=s.from_env,
                   from_file=str(manifest.base_dir / Path(s.from_file).expanduser()) if s.from_file else None,
                   swap_in=list(s.swap_in))
        for name, s in bottle.secrets.items()
    ]
    if MODEL_KEY not in bottle.secrets:
        secret_plans.append(model_secret(model_host))
    return Plan(
        slug=slug,
        agent=spec.agent,
        bottle=agent.bottle,
        backend=backend,
        created_at=time.time(),
        manifest=manifest.source,
        state_dir=str(state_dir),
        cwd=str(spec.cwd),
        copy_cwd=spec.copy_cwd,
        images=images,
        network=network,
        proxy=ProxyPlan(listen_host=network.bundle_ip, model_host=model_host,
                        upstream_ca_file=config.upstream_ca_file),
        egress=EgressPlan(allow=allow, responses=bottle.egress.responses,
                          allow_private=list(bottle.egress.allow_private),
                          websockets=list(bottle.egress.websockets),
                          model_server_tools=list(bottle.egress.model_server_tools)),
        git_gate=git_gate_plan(manifest, bottle, Path(spec.cwd)),
        supervise=SupervisePlan(mode=agent.supervise.mode, deny=agent.supervise.deny, ask=agent.supervise.ask,
                                allow=agent.supervise.allow, default=agent.supervise.default,
                                ask_timeout=agent.supervise.ask_timeout),
        scripted_model=ScriptedModelPlan(script_file=str(spec.model_script)) if spec.model_script else None,
        guest=guest,
        resources=resources_of(bottle),
        prompt_file=prompt_file,
        skills=[SkillPlan(name=name, source=str(manifest.find_skill(name))) for name in agent.skills],
        secrets=secret_plans,
        env=dict(bottle.env),
        workspace=WorkspacePlan(exclude=list(bottle.workspace.exclude), include=list(bottle.workspace.include)),
        model=agent.model,
        claude_args=list(agent.claude_args),
        backend_options=backend_options or {},
    )


def warn_unapplied(name: str, bottle: Any, backend: str, unapplied: Mapping[str, str]) -> list[str]:
    """Warn on stderr for each field of bottle ``name`` the manifest sets and ``backend`` does not apply as written.

    :return: the warnings, as printed.
    """
    lines = [f"bottle: warning: bottles.{name}.{field}: {why} on the {backend} backend (see docs/backends.md)"
             for field, why in sorted(unapplied.items()) if field in bottle.model_fields_set]
    for line in lines:
        print(line, file=sys.stderr)
    return lines


def _on_allow_list(host: str, entries: list) -> bool:
    """Whether requests to ``host`` ('name', '*.name', either with ':port') can pass any of the allow-list ``entries``."""
    pattern = host.split(":")[0]
    probe = "probe" + pattern[1:] if pattern.startswith("*.") else pattern  # a name the pattern stands for
    return any(e.matches_host(probe) and (e.wildcard or not pattern.startswith("*.")) for e in entries)


def check_hosts_allowed(manifest, name: str, bottle: Any, allow: list[str]) -> None:
    """A WebSocket host off the allow-list is an error; a secret's host off it, where it is never sent, a warning."""
    from .bundle.image.egress_policy import parse_entry
    from .errors import ManifestError

    entries = [parse_entry(text) for text in allow]
    for index, host in enumerate(bottle.egress.websockets):
        if not _on_allow_list(host, entries):
            raise ManifestError(manifest.source, f"{host!r} is not on the allow-list, so no WebSocket could reach it",
                                field=f"bottles.{name}.egress.websockets[{index}]",
                                hint=f"add {host.split(':')[0]!r} to egress.allow too, or remove it here")
    for secret_name, secret in sorted(bottle.secrets.items()):
        for index, host in enumerate(secret.hosts):
            if not _on_allow_list(host, entries):
                print(f"bottle: warning: bottles.{name}.secrets.{secret_name}.hosts[{index}]: {host!r} is not on the "
                      "allow-list, so the secret is never sent there (add it to egress.allow)", file=sys.stderr)


def _warn_kept_git_config(name: str, bottle: Any, cwd: Path) -> None:
    """``workspace.include = [".git/config"]`` keeps nothing in a git repository: its workspace is a fresh clone."""
    from . import hostrepo
    from .workspace import GIT_CONFIG, WorkspaceFilter

    if not WorkspaceFilter.of(bottle.workspace).scrubs(GIT_CONFIG):
        repo = hostrepo.find_repository(cwd)
        if repo is not None and not repo.bare:
            print(f"bottle: warning: bottles.{name}.workspace.include: {GIT_CONFIG!r} keeps nothing here: the "
                  f"workspace of a git repository is a clone with a new {GIT_CONFIG} (none of the host's remotes, "
                  "credentials or hooks); remove it", file=sys.stderr)


def git_gate_plan(manifest, bottle, cwd: Path) -> GitGatePlan:
    """The gate's remotes (the declared ones, else the cwd's own repository as ``origin``) and the agent's identity."""
    from . import hostrepo

    declared = {name: (remote, f"bottles.{_bottle_name(manifest, bottle)}.git.{name}")
                for name, remote in bottle.git.items()}
    remotes = {name: GitGateRemote(**hostrepo.gate_remote(remote, manifest, field))
               for name, (remote, field) in declared.items()}
    if not remotes:
        found = hostrepo.find_repository(cwd)
        if found is not None:
            remotes["origin"] = GitGateRemote(**hostrepo.default_remote(found))
    owners = {(r.owner_uid, r.owner_gid) for r in remotes.values() if r.kind == "path"}
    if len(owners) > 1:
        from .errors import ManifestError

        raise ManifestError(manifest.source, "the host repositories behind the git gate have different owners "
                            f"({', '.join(f'{u}:{g}' for u, g in sorted(owners))})", field=f"bottles.{_bottle_name(manifest, bottle)}.git",
                            hint="use repositories of one owner in one bottle")
    name, email = hostrepo.author(cwd)
    return GitGatePlan(remotes=remotes, run_as=owners.pop() if owners else None,
                       author_name=bottle.git_author.name or name, author_email=bottle.git_author.email or email,
                       include_ignored=bottle.workspace.include_ignored)


def _bottle_name(manifest, bottle) -> str:
    return next(name for name, candidate in manifest.bottles.items() if candidate is bottle)
