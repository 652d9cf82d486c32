"""Work an agent leaves in its bottle: commits never pushed, changes never committed.

A bottle hands work back only as a push through its git gate, and it is removed
when the run ends. Before that, ``bottle run`` looks at the workspace once and
names what would go with it, so that a user whose agent committed without
pushing (or never committed) learns it while it can still be asked for.

Only for a workspace that is a clone of the user's own repository (the
default): there the host can tell what came in and what came home.

- A branch is *not pushed* when its tip is on no remote-tracking ref of the
  bottle (a push through the gate updates one) and in no object store of the
  host that the gate writes to (what came in from the host, and what a push to
  a path upstream brought home, is there).
- A path is *changed* when the bottle's ``git status`` lists it and the host's
  own ``git status`` does not list it the same way (the workspace came in with
  the host's uncommitted changes), leaving out what the workspace filter never
  copied in.

The look runs inside the bottle as the agent user, so its answer is the agent's
to forge: it is a convenience, not an audit. It is bounded in time and bytes and
every name it prints has its control characters made visible.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .hostrepo import Repository, find_repository
from .plan import Plan
from .sandbox import Bottle
from .workspace import WorkspaceFilter

#: Bounds on the look inside the bottle: seconds, and bytes of its answer read.
LOOK_SECONDS = 15
LOOK_BYTES = 256 * 1024
#: Names shown per kind in the one line printed.
SHOWN = 3

_SEPARATOR = "--bottle-status--"
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")

# Run by sh as the agent: branches whose tip no remote-tracking ref contains, then the status.
# Written to a file first and read back bounded, so a process the repository's own git config
# starts (a filter, say) cannot hold the exec's output open. fsmonitor is off: no hook runs.
_LOOK = f"""
cd "$1" 2>/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
out=$(mktemp) || exit 0
timeout -s KILL {LOOK_SECONDS} sh -c '
  git for-each-ref --format="%(objectname) %(refname:short)" refs/heads | head -n 200 |
  while read -r sha name; do
    [ -z "$(git rev-list -n 1 "$sha" --not --remotes 2>/dev/null)" ] || echo "$sha $name"
  done
  echo {_SEPARATOR}
  git -c core.fsmonitor=false --no-optional-locks status --porcelain=v1 -z --untracked-files=all
' >"$out" 2>/dev/null </dev/null
head -c {LOOK_BYTES} "$out"
rm -f "$out"
"""


@dataclass
class WorkLeft:
    """What the look found: branches not pushed (name, tip) and paths changed but not committed."""

    branches: list[tuple[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def line(self) -> str | None:
        """One line for the end of a run, or None when nothing is left."""
        parts = []
        if self.branches:
            shown = ", ".join(f"{name} ({tip[:7]})" for name, tip in self.branches[:SHOWN])
            more = f" and {len(self.branches) - SHOWN} more" if len(self.branches) > SHOWN else ""
            parts.append(f"commits on {_count(len(self.branches), 'branch', 'branches')} not pushed: {shown}{more}")
        if self.paths:
            shown = ", ".join(self.paths[:SHOWN])
            more = f" and {len(self.paths) - SHOWN} more" if len(self.paths) > SHOWN else ""
            parts.append(f"{_count(len(self.paths), 'path', 'paths')} changed and not committed: {shown}{more}")
        if not parts:
            return None
        return ("work left in the bottle, removed with it: " + "; ".join(parts)
                + " (only a push through the gate keeps work, e.g. git push origin HEAD:bottle/NAME)")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def parse(answer: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The look's answer: (branches as (name, tip)), (status entries as (code, path)). Anything odd is dropped."""
    head, sep, status = answer.partition(f"{_SEPARATOR}\n".encode())
    if not sep:
        return [], []
    branches = []
    for raw in head.decode("utf-8", "replace").splitlines():
        sha, _, name = raw.partition(" ")
        if _SHA.fullmatch(sha) and name:
            branches.append((name, sha))
    return branches, status_entries(status)


def status_entries(porcelain_z: bytes) -> list[tuple[str, str]]:
    """``git status --porcelain=v1 -z`` as (two-letter code, path); a rename's source entry is skipped."""
    entries, fields = [], porcelain_z.split(b"\0")
    i = 0
    while i < len(fields):
        item = fields[i].decode("utf-8", "replace")
        i += 1
        if len(item) < 4 or item[2] != " ":
            continue
        code, path = item[:2], item[3:]
        entries.append((code, path))
        if code[0] in "RC":  # -z writes the source path next, as a field of its own
            i += 1
    return entries


def _host_status(top: Path) -> bytes:
    """The host working tree's own status, read without writing the index back."""
    out = subprocess.run(["git", "-C", str(top), "-c", "core.fsmonitor=false", "--no-optional-locks", "status",
                          "--porcelain=v1", "-z", "--untracked-files=all"], capture_output=True, timeout=60)
    return out.stdout if out.returncode == 0 else b""


def _on_host(stores: list[Path], tips: list[str]) -> set[str]:
    """The commits of ``tips`` some host object store holds."""
    found: set[str] = set()
    for store in stores:
        wanted = [tip for tip in tips if tip not in found]
        if not wanted:
            break
        answer = subprocess.run(["git", "--git-dir", str(store), "cat-file", "--batch-check"],
                                input="".join(f"{tip}\n" for tip in wanted).encode(), capture_output=True, timeout=60)
        for line in answer.stdout.decode("utf-8", "replace").splitlines():
            sha, _, kind = line.partition(" ")
            if kind.startswith("commit"):
                found.add(sha)
    return found


def judge(plan: Plan, repo: Repository, answer: bytes) -> WorkLeft:
    """What of the look's answer is work the host does not have."""
    branches, entries = parse(answer)
    stores = [repo.common_dir, *(Path(r.git_dir) for r in plan.git_gate.remotes.values() if r.kind == "path" and r.git_dir)]
    home = _on_host(stores, [tip for _, tip in branches])
    left = WorkLeft(branches=[(name, tip) for name, tip in branches if tip not in home])
    host_entries = set(status_entries(_host_status(repo.top))) if repo.top else set()
    keeps = WorkspaceFilter.of(plan.workspace).keeps
    left.paths = [path for code, path in entries if (code, path) not in host_entries and keeps(path)]
    return left


def look(plan: Plan, bottle: Bottle) -> WorkLeft:
    """Look at the bottle's workspace; nothing when it is not a clone of the user's repository, or the look fails."""
    repo = find_repository(Path(plan.cwd)) if plan.copy_cwd else None
    if repo is None or repo.bare:
        return WorkLeft()
    try:
        result = bottle.exec(["sh", "-c", _LOOK, "look", plan.guest.workspace])
    except Exception:  # a bottle already gone, an engine hiccup: the run's own outcome stands
        return WorkLeft()
    if not result.ok:
        return WorkLeft()
    try:
        return judge(plan, repo, result.stdout[:LOOK_BYTES])
    except (OSError, subprocess.SubprocessError):
        return WorkLeft()
