"""A warm pool on Docker: a bottle launched ahead of its run, and a run taking one over.

:class:`PooledLaunch` is the docker launch with its bundle given only the
pooled files (see :mod:`bottle_core.bundle.contract`): its packet filter is
set, its proxy started and waiting, the agent up with its default route
gone and its two waiting processes (``pooled-agent`` in the agent image: the
main process as root, the agent user's side) waiting for a run.
:class:`ClaimedLaunch` hands such a bottle to one run: the run's bundle files
go in (its packet filter set again first when the run's rules differ from the
pooled ones), the bundle starts serving, its logs are filed in the state dir,
and on exit the whole bottle goes, never to be used again.

A claimed bottle (:class:`ClaimedBottle`) takes the run's provisioning round
without an exec: the round's archive goes in (one engine call), the agent's
main process gets ``SIGUSR1`` (the engine's kill call), runs root's script,
has the agent user's side run the agent's, and says each outcome and the
round's end on its output, which the run reads before its command starts.

A claimed run makes its engine calls without the docker SDK (its import is
~0.3 s of CPU): :class:`~.engine.RawAPI` on the engine's socket, for the
look-up, the archives, the signals, the execs and the output. Only a packet
filter set again for the run goes through the SDK.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from bottle_core.bundle import contract
from bottle_core.bundle.image.pooled import CLAIM_SIGNAL
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.pool import PooledBottleGone, filter_holds
from bottle_core.sandbox import ExecResult, Launch
from bottle_core.signals import deferred

from . import bundle as container, engine, labels
from .container import DockerBottle
from .launch import DockerLaunch
from .removal import remove_detached, remove_resources
from .sidecar import ContainerBundle

#: How long a claimed run waits for its provisioning round's end (the agent's side answers within 120 s).
ROUND_TIMEOUT = 150.0
ROUND_END = "bottle-provision: end"


class PooledBundle(ContainerBundle):
    """A pooled bundle: ready once it waits for its run (it says ``bottle-bundle: pooled``)."""

    def wait_ready(self) -> None:
        api = self.client.api
        container._poll(self.client, self.container_id, self.slug,
                        lambda: contract.POOLED_LINE in api.logs(self.container_id, stdout=True, stderr=True),
                        "start for the pool", contract.READY_TIMEOUT)


class PooledLaunch(DockerLaunch):
    """The docker launch for a pool: nothing secret read or given, the bundle waiting for a run."""

    def __init__(self, plan: Plan):
        super().__init__(plan, pooled=True)

    def start(self) -> None:
        super().start()
        assert self.bottle is not None
        bundle = self.bottle.bundle
        self.bottle.bundle = PooledBundle(bundle.client, bundle.container_id, bundle.slug)


class ClaimedLaunch(Launch):
    """One run's use of a pooled bottle: enter gives it the run's configuration, exit removes the bottle.

    A bottle no longer there (its agent or bundle not running, or removed while being claimed) raises
    :class:`~bottle_core.pool.PooledBottleGone`, and what is left of it is removed: the run starts cold.
    """

    def __init__(self, plan: Plan, pooled: Plan):
        super().__init__(plan)
        self.pooled = pooled
        self.client = None  # set in start: a DOCKER_HOST the raw calls cannot reach starts the run cold
        self.bundle: ContainerBundle | None = None
        self.containers: list[str] = []  # every container of the bottle, running or not: removed on exit
        self.remover = None

    def _find(self) -> dict[str, dict]:
        """The bottle's running containers by role, in one engine call; every container of it is noted."""
        found = self.client.api.containers(all=True, filters={"label": f"{labels.SLUG}={self.plan.slug}"})
        self.containers = [c["Id"] for c in found]
        running = {(c.get("Labels") or {}).get(labels.ROLE): c for c in found if c.get("State") == "running"}
        missing = [role for role in ("agent", "bundle") if role not in running]
        if missing:
            raise PooledBottleGone(f"pooled bottle {self.plan.slug} is gone (no running {' or '.join(missing)})")
        return running

    def start(self) -> None:
        plan = self.plan
        secrets = contract.secret_table(plan)  # before the bottle is touched: a missing secret fails here
        try:
            self.client = engine.raw_client()
        except engine.EngineError as exc:  # an engine over SSH: the bottle is removed (teardown), the run starts cold
            found = engine.client().api.containers(all=True, filters={"label": f"{labels.SLUG}={plan.slug}"})
            self.containers = [c["Id"] for c in found]
            raise PooledBottleGone(f"pooled bottle {plan.slug} cannot be claimed here ({exc})") from None
        running = self._find()
        agent, bundle = running["agent"], running["bundle"]
        self.bundle = ContainerBundle(self.client, bundle["Id"], plan.slug)
        try:
            if not filter_holds(self.pooled, plan):
                self._set_filter(bundle["Id"])
            self.client.api.put_archive(bundle["Id"], "/", container.files_tar(contract.claim_files(plan, secrets)))
            # The claim's signal: the bundle's entry point starts serving the run now (pooled.py).
            self.client.api.kill(bundle["Id"], signal=CLAIM_SIGNAL)
        except engine.EngineError as exc:
            if not engine.not_found(exc) and exc.status_code != 409:  # 409: no longer running
                raise
            raise PooledBottleGone(f"pooled bottle {plan.slug} is gone (removed while being claimed)") from None
        self.bundle.file_logs(plan.state_dir)
        self.bottle = ClaimedBottle(plan, self.client, agent_id=agent["Id"], bundle=self.bundle)

    def _set_filter(self, bundle_id: str) -> None:
        """The packet filter again, from the run's configuration, before the bundle serves anything (through
        the SDK: it creates a container)."""
        from .oneshot import run_one_shot

        client = engine.client()
        made: list[str] = []
        remove_resources(client, [f"bottle-{self.plan.slug}-netfilter"], [])  # the pooled one, if still there
        try:
            netfilter = container.create_netfilter(client, self.plan, bundle_id, self.plan.images["bundle"], made)
            run_one_shot(client, netfilter, "set the bundle's packet filter for this run")
        finally:
            remove_resources(client, made, [])

    def teardown(self) -> None:
        """File the bundle's last lines, then have the whole bottle removed by a process of its own (as a cold
        launch's teardown does), so the run has its exit status at once."""
        with deferred():
            if self.bundle is not None:
                self.bundle.finish_logs()
            # What is left of it goes, whatever happened (found gone, or an engine the raw calls cannot reach).
            self.remover = remove_detached(self.client or engine.light_client(), self.plan.slug, self.containers,
                                           [self.plan.network.name])


class ClaimedBottle(DockerBottle):
    """A claimed pooled bottle: its first provisioning round goes to the agent's waiting processes, and a
    command without a TTY runs in raw engine calls (with one, through the docker CLI, as a cold bottle's)."""

    def __init__(self, plan: Plan, client, agent_id: str, bundle):
        super().__init__(plan, client, agent_id=agent_id, bundle=bundle)
        # The waiting processes take one round, and only before any command has run in the agent.
        self._waiting = True

    def exec(self, command, **kwargs) -> ExecResult:
        self._waiting = False
        return super().exec(command, **kwargs)

    def apply_round(self, archive: bytes, users: Sequence[str]) -> dict[str, ExecResult] | None:
        """Put the round's archive in, signal the agent's main process, and read each user's outcome from its
        output; None (execs, then) for a later round, or a user other than root and the agent's."""
        sides = {"0": "root", str(self.plan.guest.uid): "agent"}
        if not self._waiting or not set(users) <= set(sides):
            return None
        self._waiting = False
        api = self.client.api
        self.copy_in(archive, "/")
        said: dict[str, list[str]] = {"root": [], "agent": []}
        codes: dict[str, int] = {}
        pending, output = b"", None
        try:
            api.kill(self.agent_id, signal="SIGUSR1")
            # Its output from the start (an attach could miss what it says before attaching is done).
            output = api.logs(self.agent_id, stdout=True, stderr=True, stream=True, follow=True,
                              timeout=ROUND_TIMEOUT)
            deadline = time.monotonic() + ROUND_TIMEOUT
            for chunk in output:
                if time.monotonic() > deadline:
                    raise TimeoutError
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in (raw.decode("utf-8", "replace") for raw in lines):
                    if line == ROUND_END:
                        return {user: ExecResult(codes.get(side, -1), b"", "\n".join(said[side]).encode())
                                for user, side in sides.items() if user in users}
                    _note(line, said, codes)
        except (socket.timeout, TimeoutError):
            raise BottleRuntimeError(f"the provisioning of bottle {self.plan.slug} did not end within "
                                     f"{ROUND_TIMEOUT:.0f} s; the command was not run") from None
        finally:
            if output is not None:
                output.close()
        raise BottleRuntimeError(f"the agent of bottle {self.plan.slug} stopped during its provisioning; the command "
                                 f"was not run: {' | '.join((said['root'] + said['agent'])[-2:]) or 'no output'}")

    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        self._waiting = False
        if tty:
            return super().run(argv, tty=tty, user=user, env=env, workdir=workdir)
        return run_attached(self.client.api, self.agent_id, list(argv), user=self._user(user),
                            env=self._env(user, env), workdir=workdir or self.plan.guest.workspace)


def _note(line: str, said: dict[str, list[str]], codes: dict[str, int]) -> None:
    """One line of a pooled agent's round: ``bottle-provision SIDE: TEXT`` or ``bottle-provision SIDE exit N``."""
    for side in said:
        head = f"bottle-provision {side}"
        if line.startswith(head + ": "):
            said[side].append(line[len(head) + 2:])
        elif line.startswith(head + " exit "):
            code = line[len(head) + 6:]
            codes[side] = int(code) if code.isdigit() else -1


def run_attached(api, container_id: str, argv: list[str], *, user: str, env: Mapping[str, str] | None,
                 workdir: str) -> int:
    """Run ``argv`` in a container with this process's stdin, stdout and stderr (no TTY); its exit code."""
    stdin = sys.stdin.buffer if sys.stdin is not None and not sys.stdin.closed else None
    exec_id = api.exec_create(container_id, argv, user=user, environment=dict(env or {}), workdir=workdir,
                              stdin=stdin is not None, stdout=True, stderr=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    if stdin is not None:
        def pump() -> None:
            try:
                while chunk := stdin.read1(65536):
                    sock.sendall(chunk)
                sock.shutdown(socket.SHUT_WR)  # the command sees end of input
            except (OSError, ValueError):
                pass  # the command ended first

        threading.Thread(target=pump, name="exec-stdin", daemon=True).start()
    outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    try:
        for stream, payload in engine.frames(sock.recv):
            out = outputs.get(stream, sys.stdout.buffer)
            out.write(payload)
            out.flush()
    finally:
        sock.close()
    code = api.exec_inspect(exec_id)["ExitCode"]
    return code if code is not None else -1
