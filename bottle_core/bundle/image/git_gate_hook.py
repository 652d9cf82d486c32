"""The git gate's ``pre-receive`` hook: the ref policy, then the push forwarded to the upstream.

git runs it once per push, after the pushed objects were received (into a
quarantine) and checked, before any ref of the gate repository moves; a
non-zero exit refuses the whole push. Its stderr reaches the agent's
``git push`` output as ``remote: ...`` lines, so each refusal names its rule:

* ``push.allow`` -- only refs matching one of the remote's patterns;
* ``push.protected`` -- a protected ref is never deleted or force-updated
  (and is forwarded without force, so the upstream's own fast-forward check
  applies too);
* ``checked-out-branch`` -- a branch checked out in a non-bare host
  repository (or one of its worktrees) is never updated;
* ``push.max_size`` -- the received objects may not exceed the limit.

An accepted push is forwarded at once; the gate accepts it only when the
upstream did. Otherwise the push fails in the gate's own words, naming each
refused ref with git's own verdict when it is one git knows
(:data:`VERDICTS`); the upstream's text goes to the bottle's git log, its
credential removed (it could quote the request, and so the gate's token). A path
upstream's hooks do not run (they would run here, in the bundle, not on the
user's machine); its fast-forward and current-branch checks do.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .git_gate import ZERO, load_config, scrubber, upstream_env, upstream_url

#: A path upstream's receive-pack: none of its hooks, never the checked-out branch, and out of the gate's
#: quarantine (git hands that variable down to a local receive-pack, which then may not move refs).
PATH_RECEIVE_PACK = ("env -u GIT_QUARANTINE_PATH git -c core.hooksPath=/dev/null -c receive.denyCurrentBranch=refuse "
                     "receive-pack")


#: What git itself concludes about a ref the upstream did not take (``git push --porcelain``), in the gate's words.
VERDICTS = {
    "non-fast-forward": "non-fast-forward: the upstream's branch moved; fetch, rebase or merge, and push again",
    "fetch first": "non-fast-forward (fetch first): the upstream has work you do not have; fetch and push again",
    "stale info": "stale info: the upstream's ref is not where the gate saw it; fetch and push again",
    "already exists": "already exists: the upstream already has this tag",
}


def say(text: str) -> None:
    sys.stderr.write(f"bottle-gate: {text}\n")
    sys.stderr.flush()


def is_ancestor(old: str, new: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", old, new], capture_output=True).returncode == 0


def checked_out(git_dir: Path) -> set[str]:
    """The branches a non-bare repository (and each of its worktrees) has checked out."""
    heads = [git_dir / "HEAD", *sorted((git_dir / "worktrees").glob("*/HEAD"))]
    found = set()
    for head in heads:
        try:
            text = head.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text.startswith("ref: "):
            found.add(text[5:])
    return found


def received_bytes() -> int:
    """The size of the objects this push brought (they wait in git's quarantine folder until the hook agrees)."""
    quarantine = os.environ.get("GIT_QUARANTINE_PATH")
    if not quarantine:
        return 0
    return sum(path.stat().st_size for path in Path(quarantine).rglob("*") if path.is_file())


def ref_refusal(ref: str, old: str, new: str, remote: Mapping, checked: set[str],
                ancestor: Callable[[str, str], bool] = is_ancestor) -> tuple[str, str] | None:
    """The first of the remote's ref rules an update of ``ref`` from ``old`` to ``new`` breaks, as (rule, message).

    ``checked`` is the set of branches checked out in the host repository (and
    its worktrees): empty for a bare one. The gate applies these rules to a
    push, and the way home from a cluster applies them again on the host.
    """
    if not any(fnmatch.fnmatchcase(ref, pattern) for pattern in remote["push_allow"]):
        return "push.allow", f"{ref} may not be pushed: only {', '.join(remote['push_allow'])}"
    if any(fnmatch.fnmatchcase(ref, pattern) for pattern in remote["protected"]):
        if new == ZERO:
            return "push.protected", f"{ref} is protected: it may not be deleted"
        if old != ZERO and not ancestor(old, new):
            return "push.protected", f"{ref} is protected: it may not be force-updated"
    if ref in checked:
        return "checked-out-branch", (f"{ref} is checked out in the host repository: it is never updated from a "
                                      "bottle; push to another branch")
    return None


def refusal(updates: list[tuple[str, str, str]], remote: dict, upstream: Path | None) -> tuple[str, str] | None:
    """The first rule a push breaks, as (rule, message); None when it keeps them all."""
    checked = checked_out(upstream) if upstream is not None and not remote["bare"] else set()
    for old, new, ref in updates:
        if found := ref_refusal(ref, old, new, remote, checked):
            return found
    size, limit = received_bytes(), int(remote["max_bytes"])
    if size > limit:
        return "push.max_size", f"the push is {size / 2**20:.1f} MiB, over the limit of {limit / 2**20:.1f} MiB"
    return None


def forward(config: dict, name: str, updates: list[tuple[str, str, str]]) -> subprocess.CompletedProcess:
    """Push the same updates to the upstream: a fast-forward plainly, a forced one only if the upstream is as seen."""
    remote = config["git_gate"]["remotes"][name]
    argv = ["git", "push", "--no-verify", "--porcelain"]
    if remote["kind"] == "path":
        argv.append(f"--receive-pack={PATH_RECEIVE_PACK}")
    if len(updates) > 1:
        argv.append("--atomic")
    refspecs = []
    for old, new, ref in updates:
        if new == ZERO:
            argv.append(f"--force-with-lease={ref}:{old}")
            refspecs.append(f":{ref}")
        elif old == ZERO or is_ancestor(old, new):
            refspecs.append(f"{new}:{ref}")
        else:  # a forced update of an allowed, unprotected ref (the policy refused it for protected ones)
            argv.append(f"--force-with-lease={ref}:{old}")
            refspecs.append(f"+{new}:{ref}")
    argv += [upstream_url(config, name), *refspecs]
    return subprocess.run(argv, env=upstream_env(config, name), capture_output=True, text=True)


def refused_refs(porcelain: str) -> list[str]:
    """The gate's words for each ref ``git push --porcelain`` says was refused (nothing of the upstream's text)."""
    words = []
    for line in porcelain.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] == "!":
            ref = fields[1].rpartition(":")[2]  # our own refspec: the ref the agent pushed
            verdict = next((text for key, text in VERDICTS.items()
                            if fields[2].startswith("[rejected]") and f"({key})" in fields[2]), "refused by the upstream")
            words.append(f"{ref}: {verdict}")
    return words


def record(path: str | None, entry: dict) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def main() -> int:
    config = load_config()
    name = os.environ["BOTTLE_GATE_REMOTE"]
    remote = config["git_gate"]["remotes"][name]
    updates = [tuple(line.split()[:3]) for line in sys.stdin if len(line.split()) >= 3]
    upstream = Path(upstream_url(config, name)) if remote["kind"] == "path" else None
    entry = {"time": time.time(), "remote": name, "upstream": remote["url"],
             "refs": [{"ref": ref, "old": old, "new": new} for old, new, ref in updates]}
    broken = refusal(updates, remote, upstream)  # type: ignore[arg-type]
    if broken:
        rule, message = broken
        say(f"refused by rule {rule}: {message}")
        record(os.environ.get("BOTTLE_GATE_RECORDS"), {**entry, "decision": "refused", "rule": rule, "reason": message})
        return 1
    pushed = forward(config, name, updates)  # type: ignore[arg-type]
    if pushed.returncode != 0:
        say(f"the upstream of {name} refused the push; its own words are in the bottle's git log (bottle logs --git)")
        for words in refused_refs(pushed.stdout) or ["the upstream could not be reached or refused the connection"]:
            say(f"  {words}")
        said = [line.strip() for line in (pushed.stdout + pushed.stderr).splitlines()
                if line.strip() and not line.startswith(("To ", "Done", "hint:"))]
        reason = scrubber(config, name)("; ".join(said))[:1000]
        record(os.environ.get("BOTTLE_GATE_RECORDS"), {**entry, "decision": "refused", "rule": "upstream",
                                                       "reason": reason})
        return 1
    say(f"pushed to the upstream of {name}")
    record(os.environ.get("BOTTLE_GATE_RECORDS"), {**entry, "decision": "pushed", "rule": None, "reason": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
