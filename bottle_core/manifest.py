"""The manifest: the user's declaration of bottles and agents (``bottle.toml`` or JSON).

The pydantic models here are the contract: ``bottle manifest schema`` prints
their JSON Schema and ``docs/manifest.md`` describes the same fields.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .addressing import NEVER_OPTED_IN, PRIVATE_NETWORKS
from .bundle.image.egress_policy import parse_entry
from .errors import ManifestError, did_you_mean

#: The host's (and the agent's) variable of the model API key: a secret whether the manifest declares it or not.
MODEL_KEY = "ANTHROPIC_API_KEY"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY_PATTERN = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)
#: An image reference as the engine reads it (distribution's grammar: [domain[:port]/]path[:tag][@digest]), or an ID.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IMAGE_DOMAIN = rf"{_IMAGE_LABEL}(?:\.{_IMAGE_LABEL})*(?::[0-9]+)?"
IMAGE_PATTERN = re.compile(
    rf"^(?:(?:{_IMAGE_DOMAIN}/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?|sha256:[0-9a-f]{64})$")
#: A user name sent with a token (HTTP basic auth): printable, no colon (RFC 7617).
TOKEN_USER_PATTERN = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,256}$")
HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")


def _slug(value: str) -> str:
    if not SLUG_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a safe name: use 1-40 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


def _env_name(value: str) -> str:
    if not ENV_NAME_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


def _host(value: str) -> str:
    if not HOST_PATTERN.match(value.lower()):
        raise ValueError(f"{value!r} is not a host name (write 'example.com' or '*.example.com')")
    return value.lower()


def _image(value: str) -> str:
    if len(value) > 255 or not IMAGE_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an image reference (write e.g. 'debian:bookworm-slim', "
                         "'registry.example.com/team/app:1.2', or an image ID 'sha256:...')")
    return value


def _token_user(value: str) -> str:
    if not TOKEN_USER_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a user name for HTTP basic auth: use printable characters "
                         "without spaces or ':' (default 'x-access-token')")
    return value


def _egress_entry(value: str) -> str:
    return parse_entry(value).text


def _server_tool(value: str) -> str:
    if not SERVER_TOOL_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a server tool name: write its family, e.g. 'web_fetch', 'mcp'")
    return value


def _memory(value: str | int) -> str | int:
    if isinstance(value, int):
        if value < 64 * 1024 * 1024:
            raise ValueError("memory must be at least 64m")
        return value
    if not MEMORY_PATTERN.match(value.strip()):
        raise ValueError(f"{value!r} is not a size: write bytes as a number, or '512m', '2g'")
    return value


def _private_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR ({exc}): write e.g. '172.30.0.0/16'") from None
    if network.version != 4:
        raise ValueError(f"{value!r}: IPv6 is off in bottles, only IPv4 ranges can be opted in")
    if any(network.overlaps(ipaddress.ip_network(n)) for n in NEVER_OPTED_IN):
        raise ValueError(f"{value!r}: loopback and 0.0.0.0/8 are the bundle's own and cannot be opted in")
    if not any(network.subnet_of(p) for p in map(ipaddress.ip_network, PRIVATE_NETWORKS) if p.version == 4):
        raise ValueError(f"{value!r} is not inside a private range: public addresses need no opt-in "
                         "(private ranges: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, ...)")
    return str(network)


Slug = Annotated[str, AfterValidator(_slug)]
PrivateCidr = Annotated[str, AfterValidator(_private_cidr)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Host = Annotated[str, AfterValidator(_host)]
EgressEntry = Annotated[str, AfterValidator(_egress_entry)]
ImageRef = Annotated[str, AfterValidator(_image)]
TokenUser = Annotated[str, AfterValidator(_token_user)]
MemorySize = Annotated[str | int, AfterValidator(_memory)]
#: A family of the model API's server tools: a tool type without its date ('web_fetch' for 'web_fetch_20250910').
SERVER_TOOL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ServerTool = Annotated[str, AfterValidator(_server_tool)]


def _push_size(value: str | int) -> str | int:
    if isinstance(value, int):
        if value < 1024:
            raise ValueError("max_size must be at least 1k")
        return value
    if not MEMORY_PATTERN.match(value.strip()):
        raise ValueError(f"{value!r} is not a size: write bytes as a number, or '50m', '1g'")
    return value


PushSize = Annotated[str | int, AfterValidator(_push_size)]


def memory_bytes(value: str | int) -> int:
    """A manifest memory size ('512m', '2g' or bytes) in bytes."""
    if isinstance(value, int):
        return value
    number, unit = MEMORY_PATTERN.match(value.strip()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


class Strict(BaseModel):
    """Base of every manifest model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Egress(Strict):
    """Where the bottle may reach on the internet, through the bundle's proxy."""

    allow: list[EgressEntry] = Field(
        default_factory=list,
        description="Where the proxy lets requests through: 'example.com' (HTTPS on 443), '*.example.com' "
        "(its subdomains, names that look like encoded data refused), 'http://example.com' (plain HTTP on 80), "
        "'https://example.com:8443', or 'example.com:22' (any protocol on a listed port). "
        "The model API host is always allowed. See docs/egress.md.",
    )
    responses: Literal["block", "warn", "off"] = Field(
        default="block",
        description="What happens to a response whose body reads as prompt injection aimed at the agent: "
        "'block' takes out the spans that carry the instructions and delivers the rest, or withholds the body "
        "(a 403 saying why) when it is mostly instructions; 'warn' passes it whole with an X-Bottle-Warning "
        "header; 'off' does not read it, nor logs anything (a binding the user approves: bottle trust). What "
        "'block' and 'warn' find is logged. A response streamed because it "
        "is over 1 MiB is cut off instead of getting a 403, and warned about in the log only (its headers left "
        "before its body was read).",
    )
    allow_private: list[PrivateCidr] = Field(
        default_factory=list,
        description="Private IPv4 ranges (CIDR) an allowed name may resolve to, e.g. ['172.30.0.0/16'] for a "
        "server on this machine. Without it, a name resolving to a private, loopback, link-local or CGNAT "
        "address, the host's or the engine's networks, is refused. The host's own addresses stay refused. "
        "A binding the user approves (bottle trust): it opens the machine's networks to the bottle.",
    )
    websockets: list[Host] = Field(
        default_factory=list,
        description="Hosts ('example.com' or '*.example.com', on the allow-list too: one that is not is an error) "
        "the agent may open WebSocket connections to. Every other 'Upgrade: websocket' request is refused (rule websocket). Messages to a "
        "listed host are read like request bodies (one carrying a secret to a host it is not bound to, or a "
        "credential, is refused and ends the connection) and messages from it are scrubbed of real secret values.",
    )
    model_server_tools: list[ServerTool] = Field(
        default_factory=list,
        description="Server tools of the model API the agent may declare beyond the default ('web_search'): "
        "'web_fetch', 'mcp' (remote MCP servers), 'url_sources' (images and documents given by URL), "
        "'code_execution', or another tool type without its date. These make the provider's servers reach "
        "addresses the request names, around the allow-list; a request declaring one not listed is refused "
        "(rule model-server-tool). A binding the user approves (bottle trust): it widens the way out. "
        "See docs/egress.md.",
    )


class PushPolicy(Strict):
    """Which refs the agent may push to through the git gate."""

    allow: list[str] = Field(
        default_factory=lambda: ["refs/heads/bottle/*"],
        description="Ref patterns the agent may push (fnmatch style).",
    )
    protected: list[str] = Field(
        default_factory=lambda: ["refs/heads/main", "refs/heads/master"],
        description="Refs that may never be force-pushed or deleted.",
    )
    max_size: PushSize = Field(
        default="100m", description="Largest push the gate accepts (received objects): bytes, or '50m', '1g'.",
    )


class GitRemote(Strict):
    """An upstream repository the agent can fetch from and push to through the git gate."""

    url: str = Field(description="Upstream: a repository path on the host (bare or not; relative to the "
                     "manifest's folder) or an https:// URL. Its credentials stay in the bundle.")
    push: PushPolicy = Field(default_factory=PushPolicy, description="Push policy for this remote.")
    token_env: EnvName | None = Field(default=None, description="Host variable holding the https upstream's token.")
    token_file: str | None = Field(default=None, description="Host file holding the https upstream's token.")
    token_user: TokenUser = Field(default="x-access-token",
                                  description="User name sent with the token (HTTP basic auth).")

    @model_validator(mode="after")
    def _url_and_token(self) -> GitRemote:
        if self.token_env and self.token_file:
            raise ValueError("give 'token_env' or 'token_file', not both")
        scheme, _, rest = self.url.partition("://")
        if rest and (scheme != "https" or "@" in rest.split("/", 1)[0]) or self.url.startswith("git@"):
            raise ValueError(f"{self.url!r}: give a host path or an https:// URL without credentials in it "
                             "(name the token with token_env or token_file)")
        if (self.token_env or self.token_file) and not self.url.startswith("https://"):
            raise ValueError("a token is only for an https:// upstream")
        return self


class GitAuthor(Strict):
    """Who the agent's commits are by (default: the host's git user.name and user.email)."""

    name: str | None = Field(default=None, description="user.name in the bottle.")
    email: str | None = Field(default=None, description="user.email in the bottle.")


class Secret(Strict):
    """A secret the agent may use without holding it: it sees a placeholder, the proxy swaps in the value."""

    from_env: EnvName | None = Field(default=None, description="Host environment variable holding the value.")
    from_file: str | None = Field(default=None, description="Host file holding the value.")
    hosts: list[Host] = Field(min_length=1, description="The only hosts the secret may be sent to (on the "
                              "allow-list too: one that is not is warned about, as the secret never goes there).")
    swap_in: list[Literal["header", "url", "body"]] = Field(
        default_factory=lambda: ["header"], min_length=1,
        description="Where the proxy puts the real value in place of the placeholder (over HTTPS only): request "
        "headers by default; add 'url' or 'body' only for a service that wants the credential there.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if (self.from_env is None) == (self.from_file is None):
            raise ValueError("give exactly one of 'from_env' or 'from_file'")
        return self


class Workspace(Strict):
    """How the user's directory is copied in with --copy-cwd (``bottle run`` copies it in by default), and what it leaves out."""

    include_ignored: bool = Field(default=False, description="Also copy files git ignores (a git repository only).")
    exclude: list[str] = Field(
        default_factory=list,
        description="More paths to leave out, as patterns: a name ('*.pem') matches at any depth, a path with '/' "
        "('config/prod.yaml') from the top. '.env*' files are always left out unless included.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="Paths to copy although excluded (say '.env.example'). Outside a git repository, "
        "'include = [\".git/config\"]' keeps the credentials in its remote URLs (a nested repository's config by "
        "its own path, 'app/.git/config'); in one, the workspace is a clone "
        "with a new .git/config (none of the host's remotes, credentials or hooks), and that include is warned "
        "about.",
    )


class BottleDef(Strict):
    """A sandbox recipe: backend, image, resources, egress allow-list, git remotes, secrets, env."""

    backend: str | None = Field(default=None, description="Backend name (default: docker); --backend and "
                                "$BOTTLE_BACKEND win over it. A name no installed backend answers to is an error "
                                "naming this field.")
    image: ImageRef | None = Field(
        default=None, description="Base image of the agent sandbox (default: $BOTTLE_BASE_IMAGE or "
        "debian:bookworm-slim): an image of this machine's engine, a binding the user approves (bottle trust). "
        "The bundle is always built from the user's own base."
    )
    cpus: float = Field(default=2.0, gt=0, le=256, description="CPU limit, in cores (the smol backend gives whole "
                        "vCPUs, rounded up, at most 16, and warns when that differs).")
    memory: MemorySize = Field(default="2g", description="Memory limit: bytes, or '512m', '2g'.")
    pids: int = Field(default=1024, ge=16, le=1_000_000, description="Process limit inside the sandbox (docker; the "
                      "smol and k8s backends do not apply it, and warn when it is set).")
    egress: Egress = Field(default_factory=Egress, description="Outbound allow-list.")
    git: dict[Slug, GitRemote] = Field(
        default_factory=dict, description="Git remotes by name. None declared and the cwd a repository: "
        "'origin' is that repository, and pushes land there as bottle/... branches.")
    git_author: GitAuthor = Field(default_factory=GitAuthor, description="The agent's git identity.")
    secrets: dict[EnvName, Secret] = Field(default_factory=dict, description="Secrets by environment variable name.")
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="Extra environment for the agent (every command and claude run in it); it wins "
        "over the variables bottle sets itself (HTTPS_PROXY, HOME, ...). A secret's name, or the model key's, is "
        "refused: the agent holds a placeholder under it.")
    workspace: Workspace = Field(default_factory=Workspace, description="What --copy-cwd copies in and leaves out.")

    @model_validator(mode="after")
    def _env_is_no_secret(self) -> BottleDef:
        # The agent gets env after the secrets' placeholders: a clash would put this value where the placeholder
        # belongs, so the secret would never be swapped in (or, for the model key, the key would sit in the bottle).
        from .claude_login import OAUTH_TOKEN

        clash = sorted(set(self.env) & {*self.secrets, MODEL_KEY, OAUTH_TOKEN})
        if clash:
            raise ValueError(f"env {clash[0]!r} is a secret's name: the agent gets the secret's placeholder under it, "
                             "and the proxy swaps the value in; remove it from env (declare a secret to pass a "
                             "credential)")
        return self


def _rule(value: str) -> str:
    from .bundle.image.policy import RuleError, parse_rule

    try:
        parse_rule(value)
    except RuleError as exc:
        raise ValueError(str(exc)) from None
    return value.strip()


Rule = Annotated[str, AfterValidator(_rule)]


class Supervise(Strict):
    """How the bundle's supervisor judges each tool call of Claude Code, through its hooks.

    Rules use Claude Code's permission-rule syntax (``Bash(git push:*)``,
    ``Read(./secrets/**)``, ``WebFetch(domain:example.com)``, or a bare tool
    name). Deny wins over ask over allow; a call no rule matches gets ``default``.
    """

    mode: Literal["off", "audit", "enforce"] = Field(
        default="audit",
        description="off: no hooks, no supervisor, no audit log (a binding the user approves: bottle trust); "
        "audit: record every hook event and what the policy would decide, judge nothing; enforce: record and "
        "judge every tool call.",
    )
    deny: list[Rule] = Field(default_factory=list, description="Rules whose calls are refused (the model sees why).")
    ask: list[Rule] = Field(
        default_factory=list,
        description="Rules whose calls wait for `bottle approve` or `bottle deny`; no answer within ask_timeout is a deny.",
    )
    allow: list[Rule] = Field(default_factory=list, description="Rules whose calls run.")
    default: Literal["allow", "ask", "deny"] = Field(default="allow", description="The decision when no rule matches.")
    ask_timeout: float = Field(default=300.0, gt=0, le=3600, description="Seconds an asked call waits for an answer.")

    @model_validator(mode="after")
    def _rules_need_supervision(self) -> Supervise:
        if self.mode == "off" and (self.deny or self.ask or self.allow or self.default != "allow"):
            raise ValueError("rules are given but mode is 'off', so nothing would apply them: "
                             "set mode to 'enforce' (or 'audit'), or remove the rules")
        return self


class AgentDef(Strict):
    """An agent: prompt, skills, the bottle it runs in, model and extra claude arguments."""

    bottle: Slug = Field(description="Name of the bottle this agent runs in.")
    prompt: str = Field(default="", description="Text appended to Claude Code's system prompt.")
    prompt_file: str | None = Field(
        default=None, description="File (inside the manifest's folder) holding the prompt, instead of 'prompt'."
    )
    skills: list[Slug] = Field(default_factory=list, description="Skill folders to install (by name).")
    model: str | None = Field(default=None, description="Model name passed to claude --model.")
    claude_args: list[str] = Field(default_factory=list, description="Extra arguments for every claude run.")
    supervise: Supervise = Field(default_factory=Supervise, description="Supervision policy.")

    @model_validator(mode="after")
    def _one_prompt(self) -> AgentDef:
        if self.prompt and self.prompt_file:
            raise ValueError("give 'prompt' or 'prompt_file', not both")
        return self


class Manifest(Strict):
    """The whole manifest. ``base_dir`` (not a field) is the folder relative paths start from."""

    bottles: dict[Slug, BottleDef] = Field(default_factory=dict, description="Bottle definitions by name.")
    agents: dict[Slug, AgentDef] = Field(default_factory=dict, description="Agents by name.")

    _source: str = "<manifest>"
    _base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _agents_name_bottles(self) -> Manifest:
        for name, agent in self.agents.items():
            if agent.bottle not in self.bottles:
                known = ", ".join(sorted(self.bottles)) or "none"
                raise _FieldError(
                    ("agents", name, "bottle"), f"no bottle named {agent.bottle!r} (bottles: {known})"
                )
        return self

    @property
    def source(self) -> str:
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    # -- loading -----------------------------------------------------------

    @classmethod
    def from_json_obj(cls, obj: Any, *, source: str = "<manifest>", base_dir: Path | None = None) -> Manifest:
        """Validate a parsed manifest; paths (skills, prompt_file) resolve against ``base_dir`` (default cwd)."""
        if not isinstance(obj, dict):
            raise ManifestError(source, "the manifest must be a table/object with 'bottles' and 'agents'")
        try:
            manifest = cls.model_validate(obj)
        except ValidationError as exc:
            raise _manifest_error(source, exc) from None
        except _FieldError as exc:
            raise ManifestError(source, exc.message, field=_field_path(exc.loc)) from None
        manifest._source = source
        manifest._base_dir = (base_dir or Path.cwd()).resolve()
        manifest._check_paths()
        return manifest

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read ``bottle.toml`` (or a ``.json`` file) and validate it."""
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (some editors write one) is no error
        except FileNotFoundError:
            raise ManifestError(source, "no such file", hint="write a bottle.toml or pass -m PATH") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(source, f"cannot read: {exc}") from None
        if path.suffix.lower() == ".json":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ManifestError(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        else:
            try:
                obj = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ManifestError(source, f"invalid TOML: {exc}") from None
        return cls.from_json_obj(obj, source=source, base_dir=path.parent)

    # -- resolution ----------------------------------------------------------

    def skill_search_path(self) -> list[Path]:
        """Where skills are looked for, in order: the manifest's ``skills/`` folder, then ``~/.claude/skills``."""
        return [self.base_dir / "skills", Path.home() / ".claude" / "skills"]

    def find_skill(self, name: str) -> Path | None:
        """The folder of skill ``name``, or None when no search folder has it."""
        for folder in self.skill_search_path():
            candidate = folder / name
            if candidate.is_dir():
                return candidate
        return None

    def prompt_path(self, agent: str) -> Path | None:
        """The resolved prompt file of ``agent``, if it has one."""
        prompt_file = self.agents[agent].prompt_file
        return (self.base_dir / prompt_file).resolve() if prompt_file else None

    def prompt_text(self, agent: str) -> str:
        """The agent's prompt, read from its prompt_file when it has one."""
        path = self.prompt_path(agent)
        return path.read_text(encoding="utf-8") if path else self.agents[agent].prompt

    def agent(self, name: str) -> AgentDef:
        """The agent called ``name``, or a usage error naming the agents there are."""
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "none"
            raise ManifestError(self.source, f"no agent named {name!r} (agents: {known})") from None

    def _check_paths(self) -> None:
        for name, agent in self.agents.items():
            for index, skill in enumerate(agent.skills):
                if self.find_skill(skill) is None:
                    searched = " then ".join(str(p) for p in self.skill_search_path())
                    raise ManifestError(
                        self.source,
                        f"skill {skill!r} not found (searched {searched})",
                        field=f"agents.{name}.skills[{index}]",
                    )
            path = self.prompt_path(name)
            if path is not None:
                field = f"agents.{name}.prompt_file"
                if not path.is_relative_to(self.base_dir):
                    raise ManifestError(self.source, f"{agent.prompt_file!r} is outside the manifest's folder", field=field)
                if not path.is_file():
                    raise ManifestError(self.source, f"{agent.prompt_file!r} is not a file", field=field)


class _FieldError(Exception):
    """A cross-field check failed at a known location (not a ValueError, so pydantic lets it through)."""

    def __init__(self, loc: tuple[Any, ...], message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _manifest_error(source: str, exc: ValidationError) -> ManifestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    hint = None
    if first["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        hint = _nearest_key(loc)
    elif first["type"] == "missing":
        message = "required field is missing"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ManifestError(source, message + more, field=_field_path(loc), hint=hint)


def _nearest_key(loc: tuple[Any, ...]) -> str | None:
    """What to write instead of the unknown key at ``loc``: the nearest valid name, else the valid names."""
    model = _model_at(loc[:-1])
    if model is None:
        return None
    names = list(model.model_fields)
    return did_you_mean(str(loc[-1]).lower(), names) or "valid keys here: " + ", ".join(names)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The manifest model whose table is at ``loc`` (field names, table keys and list indexes), or None."""
    current: Any = Manifest
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]  # a table's value, or a list's item
        else:
            return None
        current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
