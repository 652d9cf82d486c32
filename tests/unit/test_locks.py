"""Host-side locks live in the user's private state directory and never follow a planted symlink."""

from __future__ import annotations

import fcntl
import os
import stat

import pytest

from bottle_core.errors import BottleRuntimeError
from bottle_core.locks import host_lock, lock_dir


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_the_lock_is_a_private_file_in_a_private_directory(state_home):
    with host_lock("outbound"):
        path = lock_dir() / "outbound.lock"
        assert lock_dir() == state_home / "bottle" / "locks"
        assert stat.S_IMODE(os.stat(lock_dir()).st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600 and os.lstat(path).st_uid == os.geteuid()
        # Held: another open file description cannot take it.
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the block
    os.close(fd)


def test_a_symlink_planted_as_the_lock_file_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious")
    lock_dir().mkdir(parents=True, mode=0o700)
    (lock_dir() / "outbound.lock").symlink_to(target)
    with pytest.raises(BottleRuntimeError, match="outbound.lock"):
        with host_lock("outbound"):
            pass
    assert target.read_text() == "precious"


def test_a_symlinked_lock_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    lock_dir().parent.mkdir(parents=True)
    lock_dir().symlink_to(elsewhere)
    with pytest.raises(BottleRuntimeError, match="symlink"):
        with host_lock("outbound"):
            pass
    assert list(elsewhere.iterdir()) == []


def test_a_lock_directory_others_can_write_is_refused():
    lock_dir().mkdir(parents=True)
    lock_dir().chmod(0o777)
    with pytest.raises(BottleRuntimeError, match="not private") as caught:
        with host_lock("outbound"):
            pass
    assert "chmod 700" in caught.value.hint
