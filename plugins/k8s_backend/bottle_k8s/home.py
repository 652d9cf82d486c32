"""The way home from a cluster: the git gate's path remotes, lent to the bundle pod and brought back through the API.

On docker a path remote is mounted into the bundle and the gate pushes into
it at once. A cluster cannot reach the user's machine, so here:

* at launch each path remote is **seeded** into the bundle pod's own volume
  (:data:`contract.GIT_UPSTREAMS`, where docker mounts it): a bare copy of its
  branches and tags, sent as a tar stream through an exec, unpacked as the
  gate's user. The gate treats it as its upstream and runs unchanged;
* **home** (at the end of every run, before the pods go, and on demand with
  ``bottle home``) lists the refs of each seed in the pod, takes those that
  differ from what was lent (or last brought home), brings their objects out
  as a pack (git's ``pack-objects``) through an exec stream, and lands them in the user's
  repository with the host's own check (:mod:`.home_repo`).

What was lent, per remote, is kept in the bottle's state dir
(:data:`LENT_FILE`); each ref that came home, or was refused on the host,
is a record in the bottle's git log (``bottle logs --git``).
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from pathlib import Path

from bottle_core.atomic import atomic_write
from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan

from . import home_repo
from .streams import exec_in

#: The gate's user in the bundle image: it owns the seeds, as the gate writes to them.
GATE_USER = "gate"
#: In the bottle's state dir: what each path remote's seed held, as last lent or brought home.
LENT_FILE = "k8s-home.json"
#: The ``decision`` of a git log record for a ref that came home.
HOME = "home"
#: The most a pod's listing of its refs may be, in bytes.
LISTING_LIMIT = 64 * 2**20


def path_remotes(plan: Plan) -> dict:
    """The plan's path remotes (those that live on this machine), by name."""
    return {name: remote for name, remote in plan.git_gate.remotes.items() if remote.kind == "path"}


def seed_path(name: str) -> str:
    """Where remote ``name``'s seed lies in the bundle pod (the gate's upstream for it)."""
    return f"{contract.GIT_UPSTREAMS}/{name}"


def _bundle_exec(bundle, argv: list[str], stdin: bytes | None = None, limit: int = LISTING_LIMIT):
    from .bundle import CONTAINER, as_user

    return exec_in(bundle.pod, CONTAINER, as_user(argv, GATE_USER), namespace=bundle.namespace, stdin=stdin,
                   stdout_limit=limit)


def pack_limit(remote) -> int:
    """The most a pack coming home may hold: 16 pushes of ``push.max_size``, and some; past it the pod is cut
    off (its word is not trusted, and what it sends is held in memory)."""
    return 16 * remote.max_bytes + 64 * 2**20


def _tar_of(folder: Path, name: str) -> bytes:
    """``folder`` as a tar stream under ``name/`` (the seed's sample hooks left out: the gate never runs them)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=name, filter=lambda info: None if info.name.startswith(f"{name}/hooks") else info)
    return buffer.getvalue()


def lend(plan: Plan, bundle) -> None:
    """Seed each path remote into the bundle pod and keep what was lent; before the agent can reach the gate."""
    lent = {}
    for name, remote in path_remotes(plan).items():
        with tempfile.TemporaryDirectory(prefix="bottle-seed-") as tmp:
            refs = home_repo.seed(Path(remote.git_dir), Path(tmp) / name)
            result = _bundle_exec(bundle, ["tar", "-x", "--no-same-owner", "-C", contract.GIT_UPSTREAMS],
                                  stdin=_tar_of(Path(tmp) / name, name))
        if not result.ok:
            raise BottleRuntimeError(f"could not lend git remote {name} to the bundle pod of bottle {plan.slug}: "
                                     f"{result.stderr.decode('utf-8', 'replace').strip() or result.returncode}")
        lent[name] = refs
    _save(plan, lent)


def _lent_path(plan: Plan) -> Path:
    return Path(plan.state_dir) / LENT_FILE


def _save(plan: Plan, lent: dict) -> None:
    atomic_write(_lent_path(plan), json.dumps(lent, indent=1, sort_keys=True))


def was_lent(plan: Plan) -> bool:
    """Whether this bottle's path remotes were seeded (so there is a way home to take)."""
    return _lent_path(plan).is_file()


def bring_home(plan: Plan, bundle) -> list[dict]:
    """Land in the user's repositories what the gate accepted since the last time; the git log records written.

    One at a time per bottle (the end of the run and ``bottle home`` may meet).
    """
    from bottle_core.locks import host_lock

    with host_lock(f"home-{plan.slug}"):
        lent = json.loads(_lent_path(plan).read_text(encoding="utf-8"))
        records = []
        for name, remote in path_remotes(plan).items():
            before = lent.get(name, {})
            now = _pod_refs(bundle, name)
            changes = {ref: (before.get(ref, home_repo.ZERO), now.get(ref, home_repo.ZERO))
                       for ref in sorted(set(before) | set(now)) if before.get(ref) != now.get(ref)}
            if not changes:
                continue
            git_dir = Path(remote.git_dir)
            with tempfile.TemporaryDirectory(prefix="bottle-home-") as tmp:
                pack, why = _objects_of(bundle, name, git_dir, changes, before, Path(tmp), pack_limit(remote))
                landed = home_repo.land(git_dir, remote.model_dump(), changes, pack, plan.slug, no_pack=why)
            for item in landed:
                if item.decision in (HOME, "same"):
                    if item.new == home_repo.ZERO:
                        before.pop(item.ref, None)
                    else:
                        before[item.ref] = item.new
                if item.decision != "same":
                    records.append(_record(name, remote, item))
            lent[name] = before
            _save(plan, lent)
        _file(plan, records)
        return records


def _pod_refs(bundle, name: str) -> dict[str, str]:
    listed = _bundle_exec(bundle, ["git", "-C", seed_path(name), "for-each-ref", "--format=%(objectname) %(refname)"])
    if not listed.ok:
        raise BottleRuntimeError(f"could not read the gate's refs of {name} in the bundle pod: "
                                 f"{listed.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return home_repo.parse_listing(listed.stdout.decode("utf-8", "replace"))


def _objects_of(bundle, name: str, git_dir: Path, changes: dict, before: dict, tmp: Path,
                limit: int) -> tuple[Path | None, str]:
    """The objects the user's repository lacks for ``changes``, as a pack made in the pod by git's
    ``pack-objects``; or None, and why. Left out: what the repository got when it was lent; should the pod
    lack one of those, the whole history of the new values comes."""
    wanted = sorted({new for ref, (_, new) in changes.items()
                     if new != home_repo.ZERO and home_repo.valid_ref(ref) and not home_repo.has_object(git_dir, new)})
    if not wanted:
        return None, "nothing was needed"
    argv = ["git", "-C", seed_path(name), "pack-objects", "--stdout", "--revs", "--thin", "-q"]
    why = "the pod sent no objects for it"
    for negatives in (sorted(set(before.values())), []):
        wish = "".join(f"{line}\n" for line in [*wanted, *(f"^{sha}" for sha in negatives)]).encode()
        try:
            made = _bundle_exec(bundle, argv, stdin=wish, limit=limit)
        except BottleRuntimeError as exc:
            return None, f"the pod's pack was cut off past {limit // 2**20} MiB (16 x push.max_size + 64 MiB): " \
                         f"bring work home more often with `bottle home` ({exc.message})"
        if made.ok:
            path = tmp / f"{name}.pack"
            path.write_bytes(made.stdout)
            return path, ""
        why = f"the pod could not pack the objects: {made.stderr.decode('utf-8', 'replace').strip()[-300:]}"
    return None, why


def _record(name: str, remote, item: home_repo.Landed) -> dict:
    """A git log record for one ref, in the gate's shape."""
    return {"log": "git", "time": time.time(), "remote": name, "upstream": remote.url, "stage": "home",
            "refs": [{"ref": item.ref, "old": item.old, "new": item.new}], "decision": item.decision,
            "rule": item.rule, "reason": item.reason}


def _file(plan: Plan, records: list[dict]) -> None:
    from bottle_core.bundle.logs import LogSink

    sink = LogSink(plan.state_dir)
    try:
        for record in records:
            sink.feed(json.dumps(record))
    finally:
        sink.close()


def describe(record: dict) -> str:
    """One line for the user: ``came home: refs/heads/x 1a2b3c4..5d6e7f8`` or the refusal with its rule."""
    ref = record["refs"][0]
    span = f"{ref['ref']} {ref['old'][:7]}..{ref['new'][:7]}"
    if record["decision"] == HOME:
        return f"git: {record['remote']}: came home: {span} -> {record['upstream']}"
    return f"git: {record['remote']}: not brought home: {span}: refused by rule {record['rule']}: {record['reason']}"
