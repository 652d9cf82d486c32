"""The dead-man's switch (bottle_core.reaper), without an engine: what it does on each end of the pipe."""

from __future__ import annotations

import os

from bottle_core.plan import FINISHED
from bottle_core import reaper


def run_main(monkeypatch, tmp_path, said: bytes) -> list[str]:
    swept = []
    monkeypatch.setattr(reaper, "sweep", lambda backend, slug: swept.append((backend, slug)))
    monkeypatch.setattr(reaper, "SECOND_SWEEP", 0)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, said)
    os.close(write_fd)  # the owner's end closes: written "done" first, or nothing (it died)
    saved = os.dup(0)
    os.dup2(read_fd, 0)
    try:
        reaper.main(["docker", "demo-abc123", str(tmp_path)])
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_fd)
    return swept


def test_a_released_reaper_touches_nothing(monkeypatch, tmp_path):
    (tmp_path / "prompt.md").write_text("p")
    assert run_main(monkeypatch, tmp_path, reaper.RELEASE) == []
    assert (tmp_path / "prompt.md").exists() and not (tmp_path / FINISHED).exists()


def test_a_dead_owner_means_the_bottle_is_swept_and_marked_ended(monkeypatch, tmp_path):
    (tmp_path / "prompt.md").write_text("p")
    assert run_main(monkeypatch, tmp_path, b"") == [("docker", "demo-abc123")] * 2
    assert (tmp_path / FINISHED).is_file() and not (tmp_path / "prompt.md").exists()


def test_a_released_reaper_process_ends_cleanly():
    switch = reaper.start("docker", "no-such-bottle", "/nonexistent")
    switch.release()  # returns at once: the run's exit does not wait for the reaper to start up and leave
    assert switch.process.wait(timeout=30) == 0
