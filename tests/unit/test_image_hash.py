"""The content-hash names of the agent and bundle images (bottle_core.images), the same for every backend."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from bottle_core import claude_binary, images



@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM ${BASE}\nCOPY claude /usr/local/bin/claude\n")
    (folder / "entry.py").write_text("print('hi')\n")
    return folder


def test_same_inputs_give_the_same_hash(context, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(context, twin)
    extra = {"base": "sha256:aaa", "claude": "0" * 64}
    assert images.content_hash(context, extra) == images.content_hash(context, dict(extra))
    assert images.content_hash(context, extra) == images.content_hash(twin, extra)


def test_a_changed_context_file_changes_the_hash(context):
    before = images.content_hash(context, {"base": "sha256:aaa"})
    (context / "entry.py").write_text("print('bye')\n")
    assert images.content_hash(context, {"base": "sha256:aaa"}) != before


def test_an_added_or_renamed_file_changes_the_hash(context):
    before = images.content_hash(context, {})
    (context / "extra.txt").write_text("x")
    added = images.content_hash(context, {})
    (context / "extra.txt").rename(context / "other.txt")
    assert len({before, added, images.content_hash(context, {})}) == 3


def test_bytecode_caches_do_not_change_the_hash(context):
    before = images.content_hash(context, {})
    (context / "__pycache__").mkdir()
    (context / "__pycache__" / "entry.cpython-311.pyc").write_bytes(b"\0junk")
    assert images.content_hash(context, {}) == before


def test_a_rebuilt_base_changes_both_tags_and_a_new_claude_only_the_agent():
    one = images.build_inputs("sha256:base1", "a" * 64)
    rebuilt_base = images.build_inputs("sha256:base2", "a" * 64)
    new_claude = images.build_inputs("sha256:base1", "b" * 64)
    for role in images.ROLES:
        assert images.image_tag(role, one[role]) != images.image_tag(role, rebuilt_base[role])
    assert images.image_tag("agent", one["agent"]) != images.image_tag("agent", new_claude["agent"])
    assert images.image_tag("bundle", one["bundle"]) == images.image_tag("bundle", new_claude["bundle"])


def test_tags_name_the_role_and_twelve_hex_digits():
    inputs = images.build_inputs("sha256:base", "c" * 64)
    assert re.fullmatch(r"bottle-agent:[0-9a-f]{12}", images.image_tag("agent", inputs["agent"]))
    assert re.fullmatch(r"bottle-bundle:[0-9a-f]{12}", images.image_tag("bundle", inputs["bundle"]))


def test_the_claude_digest_is_remembered_by_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    binary = tmp_path / "claude"
    binary.write_bytes(b"first")
    first = claude_binary.digest(binary)
    assert first == "a7937b64b8caa58f03721bb6bacf5c78cb235febe0e70b1b84cd99541461a08e"
    # Same size and mtime: the memo answers without reading the file again.
    stat = binary.stat()
    binary.write_bytes(b"other")
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert claude_binary.digest(binary) == first
    # A new mtime is a new key: the file is hashed again.
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert claude_binary.digest(binary) != first


def test_each_distinct_base_is_looked_up_once():
    """A plan asks the engine for a base image's ID once, however many roles are built on it."""
    from bottle_core.images import image_names, resolved_names

    asked = []

    def image_id(name: str) -> str:
        asked.append(name)
        return "sha256:" + name[0] * 64

    same = resolved_names("debian:bookworm-slim", "debian:bookworm-slim", image_id)
    assert asked == ["debian:bookworm-slim"]
    assert same == image_names("debian:bookworm-slim", "sha256:" + "d" * 64)
    asked.clear()
    theirs = resolved_names("theirs:1", "debian:bookworm-slim", image_id)
    assert asked == ["theirs:1", "debian:bookworm-slim"]
    assert theirs["bundle"] == same["bundle"] and theirs["agent"] != same["agent"]
    assert (theirs["base"], theirs["bundle_base"]) == ("theirs:1", "debian:bookworm-slim")
