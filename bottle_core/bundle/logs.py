"""The bundle's output, filed in the bottle's host state dir as it arrives.

The bundle's daemons print one JSON object a line on stdout for each thing
worth keeping, with a ``"log"`` field naming its kind (``egress``, ``git``,
...). :class:`LogSink` appends each such record to ``logs/<kind>.jsonl`` and
every other line to ``logs/bundle.log``, so the logs outlive the bundle and
``bottle logs`` can show them during and after the bottle's life.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO

KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
OTHER = "bundle.log"


class LogSink:
    """Files the bundle's stdout lines by kind under ``state_dir/logs``."""

    def __init__(self, state_dir: str | Path):
        self.folder = Path(state_dir) / "logs"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}

    def feed(self, line: bytes | str) -> None:
        """File one line of the bundle's output (its newline optional)."""
        text = (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).rstrip("\r\n")
        if not text:
            return
        name = OTHER
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("log"), str) and KIND.fullmatch(record["log"]):
                name = f"{record['log']}.jsonl"
        handle = self._files.get(name)
        if handle is None:
            fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            handle = self._files[name] = os.fdopen(fd, "a", encoding="utf-8")
        handle.write(text + "\n")
        handle.flush()

    def feed_stream(self, chunks) -> None:
        """File every line of a stream of byte chunks (lines may span chunks) until it ends."""
        pending = b""
        for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.feed(line)
        if pending:
            self.feed(pending)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
