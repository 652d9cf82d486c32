"""The Plan: everything resolved before anything starts.

A Plan is written by the selected backend's ``prepare`` hook, saved as
``plan.json`` in the bottle's host state dir, printed by ``bottle plan`` and
read back by ``bottle ls``/``stop``. Backends put what only they understand in
``backend_options``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .addressing import PRIVATE_NETWORKS
from .manifest import memory_bytes
from .spec import BottleSpec

PLAN_VERSION = 1
#: Written into a bottle's state dir when its run has ended.
FINISHED = "finished"
#: How long the state (plan and logs) of an ended bottle is kept before ``bottle gc`` removes it.
DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_MODEL_HOST = "api.anthropic.com"
MODEL_KEY = "ANTHROPIC_API_KEY"


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
    allow: list[str] = Field(default_factory=list, description="Allowed hosts, model host included.")
    allow_private: list[str] = Field(
        default_factory=list, description="Private CIDRs the bottle opted in: allowed names may resolve there.")
    refused_networks: list[str] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        description="Resolved addresses refused unless opted in: private ranges and the engine's networks.")
    host_addresses: list[str] = Field(
        default_factory=list, description="The engine host's own addresses: refused always, opted in or not.")


class GitGateRemote(PlanModel):
    """One upstream behind the git gate."""

    url: str
    push_allow: list[str]
    protected: list[str]


class GitGatePlan(PlanModel):
    """The git gate: smart-HTTP git on the bundle; pushes upstream with credentials held there."""

    port: int = Field(default=9418, description="Gate port on the bundle's bottle-side IP.")
    remotes: dict[str, GitGateRemote] = Field(default_factory=dict)


class SupervisePlan(PlanModel):
    """Where Claude Code's hook events go, and the policy applied to them."""

    mode: str = Field(default="audit")
    port: int = Field(default=9090, description="Supervisor port on the bundle's bottle-side IP.")
    deny_tools: list[str] = Field(default_factory=list)


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
    optional: bool = Field(default=False, description="True when a missing value is no error (the model key).")

    def value(self) -> str | None:
        """The real value, read on the host when the bottle launches; never stored in the plan."""
        if self.from_env is not None:
            return os.environ.get(self.from_env)
        try:
            return Path(self.from_file).read_text(encoding="utf-8").rstrip("\n")  # type: ignore[arg-type]
        except OSError:
            return None


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
    images: dict[str, str] = Field(description="Image names by role (agent, bundle, base).")
    network: NetworkPlan
    proxy: ProxyPlan
    egress: EgressPlan
    git_gate: GitGatePlan
    supervise: SupervisePlan
    guest: GuestPaths = Field(default_factory=GuestPaths)
    resources: Resources
    prompt_file: str | None = Field(description="Host copy of the prompt (mode 0600), None when the prompt is empty.")
    skills: list[SkillPlan] = Field(default_factory=list)
    secrets: list[SecretPlan] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Extra agent environment from the manifest.")
    model: str | None = None
    claude_args: list[str] = Field(default_factory=list)
    backend_options: dict[str, Any] = Field(default_factory=dict)

    @property
    def has_prompt(self) -> bool:
        return self.prompt_file is not None

    def save(self) -> Path:
        """Write plan.json into the state dir (mode 0600) and return its path."""
        path = Path(self.state_dir) / "plan.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read(cls, path: str | Path) -> Plan:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def state_root() -> Path:
    """``$XDG_STATE_HOME/bottle`` (default ``~/.local/state/bottle``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bottle"


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


def new_slug(agent: str) -> str:
    """A unique, engine-safe name for one run of ``agent``."""
    return f"{agent[:24]}-{secrets.token_hex(3)}"


def base_plan(spec: BottleSpec, *, backend: str, stage_dir: Path, network: NetworkPlan,
              images: dict[str, str], backend_options: dict[str, Any] | None = None) -> Plan:
    """The backend-independent part of a Plan, with its state dir and prompt file written.

    Backends call this from ``prepare`` with what they resolved themselves
    (network, images) so every backend lays out state and guest paths alike.
    """
    manifest = spec.manifest
    agent = manifest.agent(spec.agent)
    bottle = manifest.bottles[agent.bottle]
    slug = new_slug(spec.agent)
    state_dir = Path(stage_dir) / slug
    state_dir.mkdir(parents=True, mode=0o700)
    (state_dir / "logs").mkdir(mode=0o700)

    guest = GuestPaths(skills_dir=os.environ.get("BOTTLE_GUEST_SKILLS_DIR") or GuestPaths().skills_dir)
    prompt = manifest.prompt_text(spec.agent)
    prompt_file = None
    if prompt.strip():
        prompt_path = state_dir / "prompt.md"
        fd = os.open(prompt_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(prompt)
        prompt_file = str(prompt_path)

    model_host = os.environ.get("BOTTLE_MODEL_HOST", DEFAULT_MODEL_HOST)
    allow = sorted({model_host, *bottle.egress.allow})
    secret_plans = [
        SecretPlan(name=name, placeholder=placeholder(name), hosts=s.hosts, from_env=s.from_env,
                   from_file=str(manifest.base_dir / Path(s.from_file).expanduser()) if s.from_file else None)
        for name, s in bottle.secrets.items()
    ]
    if MODEL_KEY not in bottle.secrets:
        # The model key is a secret like any other: the agent holds a placeholder, the proxy the value.
        secret_plans.append(SecretPlan(name=MODEL_KEY, placeholder=placeholder(MODEL_KEY), hosts=[model_host],
                                       from_env=MODEL_KEY, optional=True))
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
                        upstream_ca_file=os.environ.get("BOTTLE_UPSTREAM_CA_FILE") or None),
        egress=EgressPlan(allow=allow, allow_private=list(bottle.egress.allow_private)),
        git_gate=GitGatePlan(remotes={
            name: GitGateRemote(url=r.url, push_allow=r.push.allow, protected=r.push.protected)
            for name, r in bottle.git.items()
        }),
        supervise=SupervisePlan(mode=agent.supervise.mode, deny_tools=agent.supervise.deny_tools),
        guest=guest,
        resources=Resources(cpus=bottle.cpus, memory_bytes=memory_bytes(bottle.memory), pids=bottle.pids),
        prompt_file=prompt_file,
        skills=[SkillPlan(name=name, source=str(manifest.find_skill(name))) for name in agent.skills],
        secrets=secret_plans,
        env=dict(bottle.env),
        model=agent.model,
        claude_args=list(agent.claude_args),
        backend_options=backend_options or {},
    )
