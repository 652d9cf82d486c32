"""The bundle's output, filed in the bottle's host state dir as it arrives.

The bundle's daemons print one JSON object a line on stdout for each thing
worth keeping, with a ``"log"`` field naming its kind (``egress``, ``git``,
...). :class:`LogSink` appends each such record to ``logs/<kind>.jsonl`` and
every other line to ``logs/bundle.log``, so the logs outlive the bundle and
``bottle logs`` can show them during and after the bottle's life.

What the bundle prints is partly the agent's doing (a request path, a forged
hook event), so each log is capped: at most :data:`MAX_LOG_BYTES` bytes, at
most :data:`RATE` records a second after a burst of :data:`BURST`, lines at
most :data:`MAX_LINE` bytes. A record past a cap is dropped, and the log
gets one marker record saying so (``"event": "log-limit"``): when the size
cap is reached (nothing more is kept), and when a spell over the rate
begins and ends (with the number dropped).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import IO

from .image.rate_limit import RateLimit

KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
OTHER = "bundle.log"
#: The ``event`` of a marker record a cap leaves in a log.
LIMIT_EVENT = "log-limit"
#: Largest size of one log file, in bytes.
MAX_LOG_BYTES = 64 * 1024 * 1024
#: Records a second one log takes once a burst of BURST is spent.
RATE, BURST = 200.0, 5000
#: Longest line filed; a longer one is cut (and marked) before it is parsed.
MAX_LINE = 256 * 1024


class _Log:
    """One open log file with its caps."""

    def __init__(self, path: Path, kind: str):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        self.handle: IO[str] = os.fdopen(fd, "a", encoding="utf-8")
        self.kind = kind
        self.size = os.fstat(fd).st_size
        self.full = False
        self.rate = RateLimit(RATE, BURST)

    def _write(self, text: str) -> None:
        self.handle.write(text + "\n")
        self.handle.flush()
        self.size += len(text.encode("utf-8", "replace")) + 1

    def marker(self, reason: str, **extra) -> None:
        record = {"log": self.kind, "time": time.time(), "event": LIMIT_EVENT, "reason": reason, **extra}
        self._write(json.dumps(record))

    def add(self, text: str) -> None:
        if self.full:
            return
        allowed, dropped = self.rate.take()
        if not allowed:
            if dropped == 1:  # a spell over the rate begins
                self.marker(f"over {RATE:g} records a second: records dropped until the rate drops")
            return
        if dropped:
            self.marker(f"{dropped} records dropped over the rate cap", dropped=dropped)
        if self.size + len(text) + 1 > MAX_LOG_BYTES:
            self.full = True
            self.marker(f"log reached {MAX_LOG_BYTES // (1024 * 1024)} MiB: nothing more is kept")
            return
        self._write(text)

    def close(self) -> None:
        if self.rate.refused and not self.full:
            self.marker(f"{self.rate.refused} records dropped over the rate cap", dropped=self.rate.refused)
            self.rate.refused = 0
        self.handle.close()


class LogSink:
    """Files the bundle's stdout lines by kind under ``state_dir/logs``, each log capped."""

    def __init__(self, state_dir: str | Path):
        self.folder = Path(state_dir) / "logs"
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._logs: dict[str, _Log] = {}

    def feed(self, line: bytes | str) -> None:
        """File one line of the bundle's output (its newline optional)."""
        text = (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).rstrip("\r\n")
        if not text:
            return
        name, kind, record = OTHER, "bundle", None
        if len(text) > MAX_LINE:
            text = json.dumps({"log": "bundle", "time": time.time(), "event": LIMIT_EVENT,
                               "reason": f"a line of {len(text)} characters was cut", "head": text[:1000]})
        elif text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("log"), str) and KIND.fullmatch(record["log"]):
                name, kind = f"{record['log']}.jsonl", record["log"]
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = _Log(self.folder / name, kind)
        log.add(text)

    def feed_stream(self, chunks) -> None:
        """File every line of a stream of byte chunks (lines may span chunks) until it ends.

        A line that grows past :data:`MAX_LINE` is filed cut, and the rest of it is skipped.
        """
        pending, skipping = b"", False
        for chunk in chunks:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if skipping:
                    skipping = False  # the end of a line already filed cut
                    continue
                self.feed(line)
            if len(pending) > MAX_LINE:
                if not skipping:
                    self.feed(pending)  # filed as a cut line
                pending, skipping = b"", True
        if pending and not skipping:
            self.feed(pending)

    def close(self) -> None:
        for log in self._logs.values():
            log.close()
        self._logs.clear()
