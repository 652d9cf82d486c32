"""Finding the claude binary: the user's path, the cache, or a fetch with npm (a stand-in npm here)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from bottle_core import claude_binary
from bottle_core.errors import BottleRuntimeError
from bottle_core.settings import PINNED_CLAUDE_VERSION

FAKE_NPM = """#!/bin/sh
# Stand-in for `npm pack SPEC`: records its arguments and writes the tarball npm would.
echo "$@" > "{log}"
cp "{tgz}" ./anthropic-ai-claude-code-linux-x64-9.9.9.tgz
"""


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    monkeypatch.delenv("BOTTLE_CLAUDE_BINARY", raising=False)
    monkeypatch.delenv("BOTTLE_CLAUDE_VERSION", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def package_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644  # npm tarballs do not always carry the exec bit
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_npm(tmp_path: Path, monkeypatch, members: dict[str, bytes]) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "npm-args"
    tgz = package_tgz(tmp_path / "pkg.tgz", members)
    npm = bindir / "npm"
    npm.write_text(FAKE_NPM.format(log=log, tgz=tgz))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(claude_binary.platform, "machine", lambda: "x86_64")
    return log


def test_the_users_binary_comes_first(tmp_path, monkeypatch):
    binary = tmp_path / "claude"
    binary.write_bytes(b"bin")
    binary.chmod(0o755)
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(binary))
    assert claude_binary.locate() == binary


def test_a_missing_user_binary_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(tmp_path / "nope"))
    with pytest.raises(BottleRuntimeError, match="BOTTLE_CLAUDE_BINARY=.*no such file"):
        claude_binary.locate()


def test_a_user_binary_that_is_not_executable_names_the_variable(tmp_path, monkeypatch):
    binary = tmp_path / "claude"
    binary.write_bytes(b"bin")
    binary.chmod(0o644)
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(binary))
    with pytest.raises(BottleRuntimeError, match="BOTTLE_CLAUDE_BINARY=.*not executable"):
        claude_binary.locate()


def test_a_cached_binary_is_used_without_npm(tmp_path, monkeypatch):
    cached = tmp_path / "cache" / "bottle" / "claude" / "2.0.1" / "claude"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"bin")
    monkeypatch.setenv("BOTTLE_CLAUDE_VERSION", "2.0.1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert claude_binary.locate() == cached


def test_fetch_packs_the_native_package_and_caches_its_claude(tmp_path, monkeypatch):
    log = fake_npm(tmp_path, monkeypatch, {"package/package.json": b"{}", "package/claude": b"\x7fELF real"})
    monkeypatch.setenv("BOTTLE_CLAUDE_VERSION", "9.9.9")
    found = claude_binary.locate()
    assert found == tmp_path / "cache" / "bottle" / "claude" / "9.9.9" / "claude"
    assert found.read_bytes() == b"\x7fELF real"
    assert stat.S_IMODE(found.stat().st_mode) == 0o755
    assert "pack" in log.read_text() and "@anthropic-ai/claude-code-linux-x64@9.9.9" in log.read_text()
    assert [p.name for p in found.parent.iterdir()] == ["claude"]  # the work dir is gone


def test_fetch_picks_the_arm64_package_on_arm(tmp_path, monkeypatch):
    log = fake_npm(tmp_path, monkeypatch, {"package/claude": b"arm"})
    monkeypatch.setattr(claude_binary.platform, "machine", lambda: "aarch64")
    claude_binary.locate()
    # The pinned release by default: the one whose first-run state bottle provisions.
    assert log.read_text().split()[-1] == f"@anthropic-ai/claude-code-linux-arm64@{PINNED_CLAUDE_VERSION}"


def test_a_package_without_claude_is_a_clear_error(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, {"package/package.json": b"{}"})
    with pytest.raises(BottleRuntimeError, match="no package/claude"):
        claude_binary.locate()


def test_no_npm_says_to_install_it_or_set_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(claude_binary.platform, "machine", lambda: "x86_64")
    with pytest.raises(BottleRuntimeError) as caught:
        claude_binary.locate()
    text = caught.value.render()
    assert "npm" in text and "BOTTLE_CLAUDE_BINARY" in text


def test_the_image_names_need_no_fetch(tmp_path, monkeypatch):
    """``prepare`` names the images with nothing fetched and nothing written: the release stands for the binary."""
    from bottle_core.images import image_names

    log = fake_npm(tmp_path, monkeypatch, {"package/claude": b"new"})
    names = image_names("debian:bookworm-slim", "sha256:" + "a" * 64)
    assert claude_binary.identity() == f"npm:{PINNED_CLAUDE_VERSION}"
    assert not log.exists() and not (tmp_path / "cache").exists()
    monkeypatch.setenv("BOTTLE_CLAUDE_VERSION", "9.9.9")
    assert image_names("debian:bookworm-slim", "sha256:" + "a" * 64)["agent"] != names["agent"]
    assert image_names("debian:bookworm-slim", "sha256:" + "a" * 64)["bundle"] == names["bundle"]
