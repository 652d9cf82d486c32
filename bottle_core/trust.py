"""Trust before use: a manifest that takes data from the host, or reaches into it, runs only once the user approved it.

A ``bottle.toml`` can come with any repository a user clones, and it can name
host variables and files (``from_file = "~/.ssh/id_rsa"``, a git remote's
``token_file``), the user's other repositories (a path upstream the agent
may push to, or the project's own repository with a push policy wider than
the default ``refs/heads/bottle/*``), files of the workspace that are left
out by default (``workspace.include``, ``include_ignored``), skill folders of
the user's own (``~/.claude/skills``), an image of the user's engine to run
the agent on (``image``: its files are the agent's to read) and private
networks the agent may reach (``egress.allow_private``: the user's LAN, the
engine's other containers, a cloud's metadata service at 169.254.169.254).
It can also widen the way out or take away the record of what happened:
server tools of the model API that fetch addresses the request names
(``egress.model_server_tools``: around the allow-list), responses not read
for instructions (``egress.responses = "off"``: nothing found, nothing
logged), or no supervision (``supervise.mode = "off"``: no hook, no audit log).
So, as direnv does with ``.envrc``, bottle remembers which of these *bindings* the user approved: the manifest's
absolute path and every binding, in plain words, hashed, one file per
approval under ``$XDG_CONFIG_HOME/bottle/trusted``. Anything else in the
manifest may change freely; a changed, added or removed binding is a new
hash and asks again. A manifest with no bindings needs no approval, and
what bottle adds itself (the model key, the user's own repository as
``origin``) is not the manifest's binding.

Not bindings, because they take nothing from the host: ``workspace.exclude``
(it only leaves more out), ``env`` (plain text in the manifest), egress
entries (the proxy's allow-list of public names, see docs/egress.md; a name
leading to a private address is refused unless ``allow_private``, a binding,
opts its range in).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import UsageError
from .manifest import Manifest
from .terminal import visible


@dataclass(frozen=True)
class Binding:
    """One thing the manifest takes from the host or opens to the bottle, in the words the user approves."""

    where: str
    says: str

    def describe(self) -> str:
        return f"  {visible(self.where)}: {visible(self.says)}"


class UntrustedManifest(UsageError):
    """The manifest binds host data or repositories, or loosens the bottle, and the user has not approved it."""


def _source(manifest: Manifest, env: str | None, file: str | None) -> str:
    if env:
        return f"the host variable {env}"
    return f"the host file {(manifest.base_dir / Path(file).expanduser()).resolve()}"  # type: ignore[arg-type]


def _host_of(url: str) -> str:
    return url.partition("://")[2].split("/", 1)[0]


def _project_repository(manifest: Manifest) -> Path | None:
    """The repository the manifest lives in (its own project), whose use as an upstream needs no approval."""
    from .hostrepo import find_repository

    found = find_repository(manifest.base_dir)
    return found.common_dir if found is not None else None


#: What the default push policy lets the agent write: its own branches.
AGENTS_BRANCHES = "refs/heads/bottle/"


def _default_push(push) -> bool:
    """Whether a push policy lets the agent write no more than the default does (its own ``bottle/...`` branches).

    A wider one, even into the project's own repository, could overwrite the user's other branches or
    tags, or add ``refs/replace/`` refs that make the user's git show other commits in place of theirs.
    """
    return all(pattern.startswith(AGENTS_BRANCHES) for pattern in push.allow)


def _git_bindings(manifest: Manifest, bottle_name: str, bottle) -> list[Binding]:
    from .hostrepo import find_repository

    found = []
    for name, remote in sorted(bottle.git.items()):
        where = f"bottles.{bottle_name}.git.{name}"
        push = (f"pushes allowed to {', '.join(remote.push.allow) or 'no ref'}; "
                f"protected: {', '.join(remote.push.protected) or 'none'}; largest push {remote.push.max_size}")
        if remote.url.startswith("https://"):
            if remote.token_env or remote.token_file:
                found.append(Binding(where, f"sends {_source(manifest, remote.token_env, remote.token_file)} as "
                                            f"user {remote.token_user!r}'s password to {_host_of(remote.url)} "
                                            f"({remote.url}); {push}"))
            continue
        path = (manifest.base_dir / Path(remote.url).expanduser()).resolve()
        repo = find_repository(path)
        if repo is not None and repo.common_dir == _project_repository(manifest) and _default_push(remote.push):
            continue  # the project's own repository, taking the agent's branches (bottle/...) only
        found.append(Binding(where, f"lets the agent fetch the host repository {path} and push to it; {push}"))
    return found


def _workspace_bindings(bottle_name: str, bottle) -> list[Binding]:
    found, where = [], f"bottles.{bottle_name}.workspace"
    if bottle.workspace.include_ignored:
        found.append(Binding(f"{where}.include_ignored", "copies files git ignores into the bottle"))
    if bottle.workspace.include:
        found.append(Binding(f"{where}.include", "copies files left out by default (.env*, .git/config "
                                                 f"credentials) or excluded into the bottle: "
                                                 f"{', '.join(bottle.workspace.include)}"))
    return found


def _host_bindings(bottle_name: str, bottle) -> list[Binding]:
    """The engine's image the agent runs on, and private networks of the host opened to the bottle."""
    found = []
    if bottle.image:
        found.append(Binding(f"bottles.{bottle_name}.image", f"runs the agent on this machine's image {bottle.image} "
                                                              "(every file in it is the agent's to read and send)"))
    if bottle.egress.allow_private:
        found.append(Binding(f"bottles.{bottle_name}.egress.allow_private",
                             f"lets the agent reach private addresses in {', '.join(bottle.egress.allow_private)} "
                             "(this machine's networks and LAN: other containers, routers, a cloud's metadata "
                             "service)"))
    return found


def _loosening_bindings(bottle_name: str, bottle) -> list[Binding]:
    """Settings that widen the way out of the bottle, or take away a defence and its record."""
    found, where = [], f"bottles.{bottle_name}.egress"
    if bottle.egress.model_server_tools:
        found.append(Binding(f"{where}.model_server_tools",
                             f"lets the model provider's servers fetch addresses the agent names, around the "
                             f"allow-list (server tools: {', '.join(bottle.egress.model_server_tools)})"))
    if bottle.egress.responses == "off":
        found.append(Binding(f"{where}.responses", "turns off reading responses for instructions aimed at the "
                                                   "agent: none is taken out, none is logged"))
    return found


def _agent_bindings(manifest: Manifest, agent_name: str, agent) -> list[Binding]:
    """Skill folders of the user's own, and supervision turned off."""
    found = []
    if agent.supervise.mode == "off":
        found.append(Binding(f"agents.{agent_name}.supervise.mode", "turns supervision off: no tool call is "
                                                                    "recorded in the audit log or judged"))
    for skill in agent.skills:
        folder = manifest.find_skill(skill)
        if folder is not None and not folder.resolve().is_relative_to(manifest.base_dir):
            found.append(Binding(f"agents.{agent_name}.skills", f"copies the host folder {folder.resolve()} "
                                                                f"into the bottle (skill {skill!r})"))
    return found


def bindings(manifest: Manifest) -> list[Binding]:
    """Everything the manifest takes from the host or opens to the bottle, in a stable order."""
    found = []
    for bottle_name, bottle in sorted(manifest.bottles.items()):
        found += _host_bindings(bottle_name, bottle)
        found += _loosening_bindings(bottle_name, bottle)
        for name, secret in sorted(bottle.secrets.items()):
            found.append(Binding(f"bottles.{bottle_name}.secrets.{name}",
                                 f"sends {_source(manifest, secret.from_env, secret.from_file)} to "
                                 f"{', '.join(secret.hosts)} (swapped in: {', '.join(secret.swap_in)})"))
        found += _git_bindings(manifest, bottle_name, bottle)
        found += _workspace_bindings(bottle_name, bottle)
    for agent_name, agent in sorted(manifest.agents.items()):
        found += _agent_bindings(manifest, agent_name, agent)
    return found


def trust_dir() -> Path:
    """``$XDG_CONFIG_HOME/bottle/trusted`` (default ``~/.config/bottle/trusted``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bottle" / "trusted"


def _record(manifest: Manifest) -> dict:
    return {"manifest": str(Path(manifest.source).resolve()), "bindings": [asdict(b) for b in bindings(manifest)]}


def fingerprint(manifest: Manifest) -> str:
    """The hash an approval is kept under: the manifest's path and every binding."""
    return hashlib.sha256(json.dumps(_record(manifest), sort_keys=True).encode()).hexdigest()


def is_trusted(manifest: Manifest) -> bool:
    """True when the manifest binds nothing, or the user approved exactly these bindings."""
    return not bindings(manifest) or (trust_dir() / fingerprint(manifest)).is_file()


def approve(manifest: Manifest) -> Path:
    """Remember the manifest's bindings as approved; returns the record written."""
    folder = trust_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / fingerprint(manifest)
    path.write_text(json.dumps(_record(manifest), indent=2) + "\n", encoding="utf-8")
    return path


def revoke(manifest: Manifest) -> bool:
    """Forget the approval of the manifest's current bindings; True when there was one."""
    path = trust_dir() / fingerprint(manifest)
    if path.is_file():
        path.unlink()
        return True
    return False


def trust_command(manifest: Manifest) -> str:
    """The exact command that approves this manifest."""
    return f"bottle trust -m {shlex.quote(str(Path(manifest.source).resolve()))}"


def summary(manifest: Manifest) -> str:
    """The bindings as the user reviews them, one per line (control characters made visible)."""
    lines = [f"{visible(manifest.source)} takes these from this machine, opens them to the bottle, or loosens it:"]
    lines += [binding.describe() for binding in bindings(manifest)]
    return "\n".join(lines)


def require_trust(manifest: Manifest, *, ask=None) -> None:
    """Return when the manifest may run; with ``ask`` (interactive), show the bindings and ask; else refuse.

    :param ask: a callable taking the summary and returning True to approve, or None when no one can answer.
    :raises UntrustedManifest: not approved, with the exact command that approves it.
    """
    if is_trusted(manifest):
        return
    if ask is not None and ask(summary(manifest)):
        approve(manifest)
        return
    names = "; ".join(f"{b.where}: {b.says}" for b in bindings(manifest))
    raise UntrustedManifest(f"{manifest.source} binds host data or repositories, or loosens the bottle, and these "
                            f"bindings are not approved ({names})", hint=f"review them, then run: {trust_command(manifest)}")
