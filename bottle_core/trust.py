"""Trust before use: a manifest that sends host secrets to hosts runs only once the user approved it.

A ``bottle.toml`` can come with any repository a user clones, and its
secrets name host variables and files (``from_file = "~/.ssh/id_rsa"``) and
the hosts they go to. So, as direnv does with ``.envrc``, bottle remembers
which bindings the user approved: the manifest's absolute path and its
bindings (bottle, secret, source, hosts, where swapped in), hashed, one
file per approval under ``$XDG_CONFIG_HOME/bottle/trusted``. Anything else
in the manifest may change freely; a changed binding is a new hash and
asks again. A manifest with no secrets needs no approval, and the model
key bottle adds itself is not the manifest's binding.
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


@dataclass(frozen=True)
class Binding:
    """One host secret the manifest sends out: from where on the host, to which hosts."""

    bottle: str
    secret: str
    source: str
    hosts: tuple[str, ...]
    swap_in: tuple[str, ...]

    def describe(self) -> str:
        return (f"  {self.bottle}.{self.secret}: {self.source} -> {', '.join(self.hosts)} "
                f"(swapped in: {', '.join(self.swap_in)})")


class UntrustedManifest(UsageError):
    """The manifest binds host secrets to hosts and the user has not approved these bindings."""


def bindings(manifest: Manifest) -> list[Binding]:
    """Every host variable or file the manifest binds to hosts, in a stable order."""
    found = []
    for bottle_name, bottle in sorted(manifest.bottles.items()):
        for name, secret in sorted(bottle.secrets.items()):
            if secret.from_env:
                source = f"host variable {secret.from_env}"
            else:
                source = f"file {(manifest.base_dir / Path(secret.from_file).expanduser()).resolve()}"  # type: ignore[arg-type]
            found.append(Binding(bottle_name, name, source, tuple(secret.hosts), tuple(secret.swap_in)))
    return found


def trust_dir() -> Path:
    """``$XDG_CONFIG_HOME/bottle/trusted`` (default ``~/.config/bottle/trusted``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bottle" / "trusted"


def fingerprint(manifest: Manifest) -> str:
    """The hash an approval is kept under: the manifest's path and its bindings."""
    record = {"manifest": str(Path(manifest.source).resolve()), "bindings": [asdict(b) for b in bindings(manifest)]}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def is_trusted(manifest: Manifest) -> bool:
    """True when the manifest binds nothing, or the user approved exactly these bindings."""
    return not bindings(manifest) or (trust_dir() / fingerprint(manifest)).is_file()


def approve(manifest: Manifest) -> Path:
    """Remember the manifest's bindings as approved; returns the record written."""
    folder = trust_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / fingerprint(manifest)
    record = {"manifest": str(Path(manifest.source).resolve()), "bindings": [asdict(b) for b in bindings(manifest)]}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
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
    """The bindings as the user reviews them, one per line."""
    lines = [f"{manifest.source} sends these host secrets out of this machine:"]
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
    names = "; ".join(f"{b.secret}: {b.source} -> {', '.join(b.hosts)}" for b in bindings(manifest))
    raise UntrustedManifest(f"{manifest.source} binds host secrets to hosts and these bindings are not approved "
                            f"({names})", hint=f"review the manifest, then run: {trust_command(manifest)}")
