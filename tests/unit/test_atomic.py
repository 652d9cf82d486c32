"""atomic_write: whole or not at all, private by default, nothing staged left behind."""

import os
import stat

import pytest

from bottle_core.atomic import atomic_write


def test_writes_text_and_bytes_private_by_default(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"raw", mode=0o644)
    assert target.read_bytes() == b"raw"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_content_and_leaves_nothing_staged(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write(target, 42)  # not text or bytes: fails after the staged file exists
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("mine")
    target = tmp_path / "state.json"
    target.symlink_to(victim)
    atomic_write(target, "new")
    assert victim.read_text() == "mine"
    assert not target.is_symlink() and target.read_text() == "new"
