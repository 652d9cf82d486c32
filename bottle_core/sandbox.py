"""The Bottle handle (what every backend's ``launch`` yields) and the Bundle handle (its sidecar).

Provisioners talk to the sandbox only through these interfaces, so a
provisioner written once works on every backend.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import sys
import tarfile
import tempfile
import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # annotations only: the smol backend's availability check imports this module, and must stay light
    from .plan import Plan


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run to completion in the sandbox."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def as_argv(command: Sequence[str] | str) -> list[str]:
    """A shell string runs under ``sh -c``; a sequence is run as it is."""
    return ["sh", "-c", command] if isinstance(command, str) else list(command)


class Bundle(ABC):
    """The running bundle of one bottle, as every backend exposes it.

    Five things only the backend knows how to do (wait for its daemons, fetch
    its CA, run a command in it, read its output, stop it); everything built on them
    -- trusting the CA, filing the logs, the supervisor's control client -- is
    written once, here and in core.
    """

    def __init__(self, slug: str):
        self.slug = slug
        self._ready = False
        self._filer: threading.Thread | None = None

    @abstractmethod
    def wait_ready(self) -> None:
        """Block until every daemon accepts connections; raise BottleRuntimeError with its last words if it dies."""

    @abstractmethod
    def ca_certificate(self) -> bytes:
        """The PEM of the CA its proxy signs with, as soon as the bundle has made it (the key never leaves)."""

    @abstractmethod
    def exec(self, argv: Sequence[str], *, user: str = "bundle") -> ExecResult:
        """Run ``argv`` inside the bundle to completion, as ``user`` (its daemons' own user by default)."""

    @abstractmethod
    def output(self) -> Iterable[bytes]:
        """Its output from the start, as byte chunks, following it until the bundle stops."""

    @abstractmethod
    def stop(self) -> None:
        """Stop its daemons (the output ends); removing what is left is the launch's business."""

    def ready(self) -> None:
        """:meth:`wait_ready`, once."""
        if not self._ready:
            self.wait_ready()
            self._ready = True

    def file_logs(self, state_dir: str | Path) -> None:
        """File its output in the bottle's state dir while it runs, so the logs outlive it (in the background)."""
        from .bundle.logs import LogSink

        def follow() -> None:
            sink = LogSink(state_dir)
            try:
                sink.feed_stream(self.output())
            except Exception:  # the stream broke as the bundle went: nothing more to file
                pass
            finally:
                sink.close()

        self._filer = threading.Thread(target=follow, name=f"bundle-logs-{self.slug}", daemon=True)
        self._filer.start()

    def finish_logs(self, timeout: float = 5.0) -> None:
        """Stop the bundle and let its last lines reach the state dir (at most ``timeout`` seconds)."""
        if self._filer is None:
            return
        try:
            self.stop()
        except Exception:  # already stopped or gone: its stream has ended anyway
            pass
        self._filer.join(timeout)
        self._filer = None


class Bottle(ABC):
    """A running sandbox. Backends subclass it; provisioners only call its public methods."""

    #: Whether the provision hooks' files and commands may be applied in one round: one archive unpacked at
    #: ``/`` as root, then one script a user (:class:`bottle_core.provision.ProvisionRound`). A backend whose
    #: execs cannot write ``/`` as root in the agent's sandbox says False: each call then goes to it as made.
    provision_in_one_round: bool = True

    def __init__(self, plan: Plan, bundle: Bundle | None = None):
        self.plan = plan
        #: The bottle's bundle (every launched bottle has one; None only in tests of the agent side alone).
        self.bundle = bundle

    @abstractmethod
    def exec(self, command: Sequence[str] | str, *, user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, stdin: bytes | None = None) -> ExecResult:
        """Run ``command`` to completion; ``user`` defaults to the agent user, ``workdir`` to the workspace."""

    @abstractmethod
    def run(self, argv: Sequence[str], *, tty: bool, user: str | None = None, env: Mapping[str, str] | None = None,
            workdir: str | None = None) -> int:
        """Run ``argv`` attached to this process's stdin/stdout/stderr (with a TTY if asked); return its exit code."""

    @abstractmethod
    def copy_in(self, tar_stream: bytes | BinaryIO, dest: str) -> None:
        """Unpack a tar stream into the existing guest folder ``dest``."""

    @abstractmethod
    def copy_out(self, src: str) -> bytes:
        """A tar stream of the guest path ``src``."""

    def ready(self) -> None:
        """Block until the sandbox's way out (the bundle's daemons) is up; bottle calls it before handing over."""
        if self.bundle is not None:
            self.bundle.ready()

    def apply_round(self, archive: bytes, users: Sequence[str]) -> dict[str, ExecResult] | None:
        """Apply a provisioning round without an exec, if this bottle has a way: unpack ``archive`` at ``/`` and
        run each of ``users``' round script in it (:class:`bottle_core.provision.ProvisionRound`), returning each
        user's outcome (its stderr); None, the default, when it has none (the round then execs them).
        """
        return None

    def close(self) -> None:
        """Release anything the handle holds (the launch context removes the sandbox itself)."""

    # -- conveniences every backend gets -------------------------------------

    def check(self, command: Sequence[str] | str, **kwargs) -> ExecResult:
        """``exec`` that raises when the command fails, with its stderr in the message."""
        from .errors import BottleRuntimeError

        result = self.exec(command, **kwargs)
        if not result.ok:
            shown = command if isinstance(command, str) else shlex.join(command)
            detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise BottleRuntimeError(f"in bottle {self.plan.slug}: `{shown}` exited {result.returncode}: {detail[0]}")
        return result

    def exec_bundle(self, command: Sequence[str] | str, *, user: str = "0") -> ExecResult:
        """Run a command in this bottle's bundle (probes, and a backend's own provisioning of it)."""
        if self.bundle is None:
            raise RuntimeError(f"bottle {self.plan.slug} has no bundle")
        return self.bundle.exec(as_argv(command), user=user)

    def write_files(self, dest: str, files: Mapping[str, bytes], *, mode: int = 0o644, owner: int | None = None) -> None:
        """Copy files (name -> content) into ``dest`` as one tar stream.

        Missing folders below the agent's home are made (owned by the agent);
        anywhere else ``dest`` must exist.
        """
        uid = self.plan.guest.uid if owner is None else owner
        base, below = self.anchor(dest)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            add_parents(tar, below, uid)
            for name, content in files.items():
                info = tarfile.TarInfo(posixpath.join(below, name))
                info.size, info.mode, info.uid, info.gid = len(content), mode, uid, uid
                tar.addfile(info, io.BytesIO(content))
        self.copy_in(buffer.getvalue(), base)

    def anchor(self, dest: str) -> tuple[str, str]:
        """A folder to unpack into, and where ``dest`` lies below it.

        Below the agent's home that folder is the home, and the missing folders
        travel in the tar stream itself (one engine call, owned by the agent);
        elsewhere it is ``dest`` itself.
        """
        home = self.plan.guest.home
        if dest == home or dest.startswith(home + "/"):
            return home, posixpath.relpath(dest, home)
        return dest, "."

    def claude_argv(self, args: Sequence[str], *, interactive: bool) -> list[str]:
        """The ``claude`` command line for this plan: prompt, model, the agent's and the caller's arguments."""
        return claude_argv(self.plan, args, interactive=interactive)

    def exec_claude(self, args: Sequence[str] = (), *, interactive: bool | None = None) -> int:
        """Run claude as the agent user in the workspace; interactive with a TTY when stdin is one."""
        if interactive is None:
            interactive = sys.stdin.isatty()
        return self.run(self.claude_argv(args, interactive=interactive), tty=interactive)


class Launch(AbstractContextManager):
    """What a backend's ``launch`` returns: entering brings the bottle up, leaving removes all of it.

    Subclasses write :meth:`start` (set ``self.bottle``; record each thing as
    it is made) and :meth:`teardown` (remove what was made; never raise). A
    start that fails part-way is torn down before the error goes on, so
    nothing half-started is left behind.
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        self.bottle: Bottle | None = None

    @abstractmethod
    def start(self) -> None:
        """Bring the bottle up and set ``self.bottle``."""

    @abstractmethod
    def teardown(self) -> None:
        """Remove everything :meth:`start` made, newest first, whatever happened; never raises."""

    def __enter__(self) -> Bottle:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        assert self.bottle is not None, f"{type(self).__name__}.start() set no bottle"
        return self.bottle

    def __exit__(self, *exc_info) -> None:
        self.teardown()


def claude_argv(plan: Plan, args: Sequence[str], *, interactive: bool) -> list[str]:
    """``claude`` with ``--append-system-prompt-file`` exactly when the agent has a non-empty prompt."""
    argv = ["claude", "--dangerously-skip-permissions"]
    if plan.has_prompt:
        argv += ["--append-system-prompt-file", plan.guest.prompt_file]
    if plan.model:
        argv += ["--model", plan.model]
    argv += plan.claude_args
    if not interactive and "-p" not in args and "--print" not in args:
        argv.append("-p")
    argv += list(args)
    return argv


def add_parents(tar: tarfile.TarFile, below: str, uid: int) -> None:
    """Folder entries for each step of the relative path ``below`` (nothing for ".")."""
    path = ""
    for part in [] if below == "." else below.split("/"):
        path = posixpath.join(path, part)
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, uid
        tar.addfile(info)


def tar_of_folders(folders: Iterable[tuple[str, Path]], *, uid: int, below: str = ".",
                   keep: Callable[[str], bool] | None = None, extra: Mapping[str, bytes] | None = None) -> BinaryIO:
    """One tar stream holding each host folder under ``below``/its archive name, owned by ``uid``.

    :param keep: given each path relative to its folder, False leaves it out (a folder with all below it).
    :param extra: files (path relative to each folder -> content) added after the folder's own, mode 0644.

    Spooled to disk past 32 MiB, so copying a large working tree in does not fill memory.
    """
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if keep is not None and info.name != root and not keep(posixpath.relpath(info.name, root)):
            return None
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        return info

    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        add_parents(tar, below, uid)
        for arcname, folder in folders:
            root = posixpath.normpath(posixpath.join(below, arcname))
            tar.add(folder, arcname=root, filter=owned)
            for name, content in (extra or {}).items():
                info = tarfile.TarInfo(posixpath.join(root, name))
                info.size, info.mode, info.uid, info.gid = len(content), 0o644, uid, uid
                tar.addfile(info, io.BytesIO(content))
    spool.seek(0)
    return spool  # type: ignore[return-value]
