"""A warm pool: bottles of one agent launched ahead of their runs, each taken over by one run, never reused.

A pool is a folder (:func:`directory`: one per manifest, agent and backend)
kept by one background process, the keeper (:mod:`bottle_core.pool_keeper`).
The keeper launches each pooled bottle with the backend's ``launch_pooled``
hook (the bundle gets its configuration but no secret, its proxy starts and
waits; the agent is up and trusts the bundle's CA) and, once it is ready,
writes ``ready/<slug>.json``: the bottle's Plan and its :func:`launch_key`.

A run claims one by renaming that file into ``claimed/`` (a rename is atomic:
one run gets each bottle, and the keeper retires a bottle the same way, so a
bottle it is taking down is never handed out). The claiming run makes its
own Plan fit the bottle (:func:`fitted`), starts its own reaper and records
itself as the bottle's owner (:func:`bottle_core.reaper.hand_over`), then the
backend's ``claim_pooled`` hook gives the bundle the run's configuration,
secrets, git tokens and model script; everything else per run (workspace,
claude state, git, skills, prompt, supervision settings) is provisioned as on
a cold launch. The keeper sees the file gone and lets go of the bottle; it
launches another once the run says it is past its start-up (:func:`started`).

A claim can come to nothing: another run renamed the entry first, or the
bottle is gone by the time the backend looks (its keeper died and its reaper
removed it, someone removed its containers). The backend's launch then raises
:class:`PooledBottleGone`; either way the run starts cold, with a one-line
note, its own staged Plan still whole (:attr:`Claim.own`: it is discarded
only once the claimed bottle is the run's, :func:`settled`).

What a pooled bottle fixes at launch (images, limits, the agent's
environment, the host folders given to the bundle, the proxy's ports) is its
:func:`launch_key`; a run whose key differs starts cold.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .atomic import atomic_write
from .errors import BottleRuntimeError, UsageError

if TYPE_CHECKING:  # the Plan (pydantic) is imported where a claim needs it; `bottle pool ls` needs none
    from .plan import Plan

READY, CLAIMED, RETIRED = "ready", "claimed", "retired"
CONFIG_FILE, STATUS_FILE, LOG_FILE, DRAIN_FILE = "pool.json", "status.json", "keeper.log", "drain"

#: How long `pool fill` waits for its bottles, and `pool drain` for the keeper to end.
FILL_TIMEOUT, DRAIN_TIMEOUT = 600.0, 120.0
#: A keeper with no claim for this long drains its pool and ends.
DEFAULT_IDLE_MINUTES = 30.0


def pool_root() -> Path:
    """``$XDG_STATE_HOME/bottle-pools`` (beside the bottles' state dirs, which ``bottle gc`` ages out)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bottle-pools"


def directory(manifest: str, agent: str, backend: str) -> Path:
    """The pool folder of ``agent`` of the manifest file ``manifest`` on ``backend``."""
    digest = hashlib.sha256(json.dumps([str(Path(manifest).resolve()), agent, backend]).encode()).hexdigest()[:12]
    return pool_root() / f"{agent[:24]}-{backend}-{digest}"


def launch_key(plan: Plan) -> str:
    """A digest of what a bottle fixes when it is launched; a run claims only a pooled bottle with its own key.

    The placeholders of secrets differ from plan to plan and are not part of
    it: the run takes the pooled bottle's (:func:`fitted`).
    """
    from .agent import environment
    from .bundle.contract import bundle_mounts

    placeholders = {secret.placeholder for secret in plan.secrets}
    env = {name: "<placeholder>" if value in placeholders else value for name, value in environment(plan).items()}
    upstream_ca = None
    if plan.proxy.upstream_ca_file:
        try:
            upstream_ca = hashlib.sha256(Path(plan.proxy.upstream_ca_file).read_bytes()).hexdigest()
        except OSError:
            upstream_ca = "unreadable"
    fixed = {
        "backend": plan.backend, "agent": plan.agent, "bottle": plan.bottle,
        "images": plan.images, "resources": plan.resources.model_dump(), "guest": plan.guest.model_dump(),
        "outbound": plan.network.outbound, "env": env,
        "mounts": [(m.host_path, m.bundle_path, m.read_only) for m in bundle_mounts(plan)],
        "proxy": [plan.proxy.port, plan.egress.port, plan.proxy.upstream_ca_file, upstream_ca],
    }
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()


def fitted(plan: Plan, pooled: Plan) -> Plan:
    """The run's Plan made to fit the pooled bottle: its slug, state dir, network, images, placeholders."""
    placeholders = {secret.name: secret.placeholder for secret in pooled.secrets}
    secrets = [secret.model_copy(update={"placeholder": placeholders[secret.name]}) for secret in plan.secrets]
    state_dir = Path(pooled.state_dir)
    prompt_file = str(state_dir / Path(plan.prompt_file).name) if plan.prompt_file else None
    return plan.model_copy(update={
        "slug": pooled.slug, "state_dir": pooled.state_dir, "network": pooled.network, "images": pooled.images,
        "proxy": plan.proxy.model_copy(update={"listen_host": pooled.proxy.listen_host}),
        "secrets": secrets, "prompt_file": prompt_file, "backend_options": pooled.backend_options,
    })


def filter_holds(pooled: Plan, run: Plan) -> bool:
    """Whether the packet filter set from ``pooled``'s configuration serves ``run`` as it is.

    Only when the two configurations are the same but for the networks and
    host addresses the egress stage refuses (the engine's networks and their
    gateways come and go between the pool's launch and the run), and
    everything the run refuses the pooled filter refuses too. The filter
    refuses the host addresses first, lets the opted-in ranges through, then
    refuses the refused networks: so a run's refused network is held by a
    pooled refused network or host address around it, and a run's host
    address (refused even when opted in) by a pooled host address, or by a
    pooled refused network when no opted-in range reaches it. Anything else:
    set it again for the run.
    """
    from ipaddress import ip_network

    from .bundle.contract import bundle_config

    before, after = bundle_config(pooled), bundle_config(run)
    lists = ("refused_networks", "host_addresses")
    if {**before, "egress": {k: v for k, v in before["egress"].items() if k not in lists}} != \
            {**after, "egress": {k: v for k, v in after["egress"].items() if k not in lists}}:
        return False

    def networks(values) -> list:
        return [ip_network(value, strict=False) for value in values]

    def within(wanted, held) -> bool:
        return any(wanted.version == n.version and wanted.subnet_of(n) for n in held)

    hosts, refused = networks(before["egress"]["host_addresses"]), networks(before["egress"]["refused_networks"])
    opted = networks(after["egress"].get("allow_private", []))
    if not all(within(wanted, hosts + refused) for wanted in networks(after["egress"]["refused_networks"])):
        return False
    return all(within(wanted, hosts) or (within(wanted, refused) and not any(
        wanted.version == n.version and wanted.overlaps(n) for n in opted))
        for wanted in networks(after["egress"]["host_addresses"]))


class PooledBottleGone(BottleRuntimeError):
    """Raised by a backend's ``claim_pooled`` launch when the bottle claimed is no longer there to take over."""


@dataclass(frozen=True)
class Claim:
    """A pooled bottle taken for one run: the run's Plan fitted to it, the Plan it was launched with, and the
    run's own staged Plan (what starts cold should the bottle be gone)."""

    plan: Plan
    pooled: Plan
    own: Plan


def claim(plan: Plan) -> Claim | None:
    """Take a ready pooled bottle that fits ``plan`` (same agent, manifest and backend, and the same
    :func:`launch_key` once fitted to it), if any.

    The run's staged prompt is copied into the pooled bottle's state dir,
    where its Plan is saved; the run's own state dir stays until
    :func:`settled`. When every fitting bottle was taken by another run (or
    retired) meanwhile, says so on stderr and returns None: the run starts cold.
    """
    from .plan import UNCLAIMED, Plan

    folder = directory(plan.manifest, plan.agent, plan.backend)
    ready = folder / READY
    if not ready.is_dir() or not keeper_alive(folder):
        return None
    lost = None
    for entry_file in sorted(ready.glob("*.json")):
        try:
            entry = json.loads(entry_file.read_text(encoding="utf-8"))
            pooled = Plan.model_validate(entry["plan"])
            run = fitted(plan, pooled)
        except (OSError, ValueError, KeyError):
            continue  # being written, or of another version of bottle
        if entry.get("key") != launch_key(run):
            continue
        try:
            os.rename(entry_file, folder / CLAIMED / entry_file.name)
        except OSError:
            lost = pooled.slug  # another run took it, or the keeper retired it
            continue
        if plan.prompt_file and run.prompt_file:
            import shutil

            shutil.copyfile(plan.prompt_file, run.prompt_file)
        run.save()
        (Path(run.state_dir) / UNCLAIMED).unlink(missing_ok=True)
        return Claim(run, pooled, plan)
    if lost is not None:
        print(f"bottle: pooled bottle {lost} was taken by another run; starting cold", file=sys.stderr)
    return None


#: In a claimed bottle's state dir: its run is past its start-up (provisioned, the bundle serving it).
STARTED = "started"


def started(state_dir: str) -> None:
    """Say, in a claimed bottle's state dir, that its run is past its start-up: the pool's keeper launches the
    bottle's replacement then (:data:`bottle_core.pool_keeper.REFILL_WAIT`), not while the run starts."""
    try:
        (Path(state_dir) / STARTED).touch()
    except OSError:
        pass  # the keeper's wait is bounded: the replacement comes anyway


def settled(claim: Claim) -> None:
    """The claimed bottle is the run's now: the run's own staged state dir goes."""
    import shutil

    shutil.rmtree(claim.own.state_dir, ignore_errors=True)


# -- the pool's folder: what `pool fill`, `ls` and `drain` read and write --------------------------------


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: dict) -> None:
    """Written whole, then renamed: a reader sees the old content or the new."""
    atomic_write(path, json.dumps(data, indent=2))


def pid_alive(pid: int | None) -> bool:
    from .reaper import alive

    return alive(pid)


def keeper_pid(folder: Path) -> int | None:
    return read_json(folder / STATUS_FILE).get("pid")


def keeper_alive(folder: Path) -> bool:
    return pid_alive(keeper_pid(folder))


def ready_slugs(folder: Path) -> list[str]:
    return sorted(path.stem for path in (folder / READY).glob("*.json"))


def fill(*, manifest: str, agent: str, backend: str, cwd: str, size: int, idle_minutes: float,
         timeout: float = FILL_TIMEOUT) -> Path:
    """Start the pool's keeper (or tell the running one its new size); return once ``size`` bottles are ready."""
    folder = directory(manifest, agent, backend)
    if not keeper_alive(folder):
        _clear(folder)
    pool_root().mkdir(parents=True, exist_ok=True, mode=0o700)
    for sub in (READY, CLAIMED, RETIRED):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    write_json(folder / CONFIG_FILE, {"manifest": str(Path(manifest).resolve()), "agent": agent, "backend": backend,
                                      "cwd": cwd, "size": size, "idle_minutes": idle_minutes})
    if not keeper_alive(folder):
        (folder / DRAIN_FILE).unlink(missing_ok=True)
        with open(folder / LOG_FILE, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "bottle_core.pool_keeper", str(folder)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        write_json(folder / STATUS_FILE, {"pid": process.pid, "ready": 0, "error": None})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ready_slugs(folder)) >= size:
            return folder
        status = read_json(folder / STATUS_FILE)
        if not pid_alive(status.get("pid")):
            raise BottleRuntimeError(f"the pool keeper of {agent} ended before {size} bottles were ready: "
                                     f"{status.get('error') or log_tail(folder)}")
        if status.get("error"):
            raise BottleRuntimeError(f"the pool of {agent} could not launch a bottle: {status['error']}",
                                     hint="see `bottle pool ls`; `bottle pool drain` ends the pool")
        time.sleep(0.1)
    raise BottleRuntimeError(f"the pool of {agent} did not have {size} bottles ready within {timeout:.0f} s",
                             hint=f"see {folder / LOG_FILE}")


def log_tail(folder: Path, lines: int = 3) -> str:
    try:
        text = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no output"
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def pools() -> list[Path]:
    """Every pool folder."""
    root = pool_root()
    return sorted(path for path in root.iterdir() if (path / CONFIG_FILE).exists()) if root.is_dir() else []


def describe(folder: Path) -> dict:
    """One row of `bottle pool ls`."""
    config, status = read_json(folder / CONFIG_FILE), read_json(folder / STATUS_FILE)
    alive = pid_alive(status.get("pid"))
    return {"agent": config.get("agent"), "manifest": config.get("manifest"), "backend": config.get("backend"),
            "size": config.get("size"), "ready": len(ready_slugs(folder)) if alive else 0,
            "keeper": status.get("pid") if alive else None, "bottles": ready_slugs(folder) if alive else [],
            "error": status.get("error"), "rounds": status.get("rounds", 0)}


def drain(folder: Path, stop_bottle, timeout: float = DRAIN_TIMEOUT) -> list[str]:
    """Ask the keeper to take its bottles down and end; wait for it; remove whatever is left, then the folder.

    :param stop_bottle: the backend's ``stop_bottle`` (for bottles a killed keeper's reapers had not removed yet).
    :return: the slugs removed here rather than by the keeper.
    """
    (folder / DRAIN_FILE).touch()
    pid = keeper_pid(folder)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGTERM)  # type: ignore[arg-type]
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            raise BottleRuntimeError(f"the pool keeper (pid {pid}) did not end within {timeout:.0f} s",
                                     hint=f"see {folder / LOG_FILE}")
    swept = [slug for slug in ready_slugs(folder) + sorted(p.stem for p in (folder / RETIRED).glob("*.json"))
             if stop_bottle(slug=slug)]
    _clear(folder)
    return swept


def _clear(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def require_pooling(plugins) -> None:
    """A clear error when the selected backend cannot keep a warm pool."""
    hooks = plugins.pm.hook
    if not hooks.launch_pooled.get_hookimpls() or not hooks.claim_pooled.get_hookimpls():
        raise UsageError(f"backend {plugins.backend!r} cannot keep a warm pool",
                         hint="use the docker backend for `bottle pool`, or run bottles cold")
