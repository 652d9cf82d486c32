"""A real terminal for integration tests: a tmux session a test types into and reads the screen of."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

EXIT_MARK = "bottle-exit="


class Terminal:
    """One tmux session running one command line; ``exit_code`` comes from the shell that ran it.

    Each run has a tmux server of its own (``-L``), started from this process: the command sees this
    process's environment, not that of whichever tmux server happened to be running already.
    """

    def __init__(self, name: str, folder: Path, *, width: int = 200, height: int = 50):
        if shutil.which("tmux") is None:
            pytest.fail("the interactive tests need tmux (Debian: tmux; `make host-packages` installs it)",
                        pytrace=False)
        self.name = name
        self.folder = folder
        self.width, self.height = width, height
        self.runs = 0
        self.tmux = ["tmux", "-L", name]

    def start(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        """Run ``argv`` in a fresh session of the given size, then print its exit code and keep the shell."""
        self.runs += 1  # a server of its own each time: the one a close ended may not be gone yet
        self.tmux = ["tmux", "-L", f"{self.name}-{self.runs}"]
        script = self.folder / f"{self.name}.sh"
        exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
        script.write_text(f"{exports}cd {shlex.quote(str(cwd))}\n{shlex.join(argv)}\necho {EXIT_MARK}$?\n"
                          "exec sleep 600\n")
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(self.width), "-y", str(self.height),
                        "bash", "--noprofile", "--norc", str(script)], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              check=True).stdout

    def send(self, *keys: str) -> None:
        """``tmux send-keys``: literal text, or key names such as ``Enter`` and ``C-d``."""
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)

    def resize(self, width: int, height: int) -> None:
        subprocess.run([*self.tmux, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)], check=True)

    def wait_for(self, done: Callable[[str], bool], what: str, timeout: float = 90) -> str:
        """Poll the screen until ``done(screen)``; fail with the screen when it never is."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if done(shown):
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not on screen after {timeout:.0f}s; the screen:\n{shown}", pytrace=False)
            time.sleep(0.25)

    def exit_code(self, timeout: float = 90) -> int:
        shown = self.wait_for(lambda s: EXIT_MARK in s, "the command's end", timeout)
        return int(shown.split(EXIT_MARK, 1)[1].split()[0])

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        # A killed server leaves its socket behind.
        folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (folder / self.tmux[-1]).unlink(missing_ok=True)
