"""Building the images with the engine (bottle_docker.image_build) against a recording stand-in: when it builds."""

from __future__ import annotations

import re
from pathlib import Path

import docker.errors
import pytest

from bottle_core import images
from bottle_core.errors import BottleRuntimeError
from bottle_docker import image_build


# --- ensure_images against a recording stand-in for the engine -------------------


class FakeImages:
    def __init__(self, present: set[str]):
        self.present = present
        self.labels: dict[str, dict] = {}
        self.removed: list[str] = []

    def list(self, filters):
        wanted = dict(item.split("=", 1) for item in filters["label"])
        return [type("Image", (), {"id": tag, "tags": [tag], "attrs": {"Created": f"{order:04d}"}})()
                for order, (tag, labels) in enumerate(self.labels.items())
                if tag in self.present and all(labels.get(k) == v for k, v in wanted.items())]

    def remove(self, image_id):
        self.present.discard(image_id)
        self.removed.append(image_id)

    def get(self, name: str):
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"no such image: {name}")
        return type("Image", (), {"id": f"sha256:{name}"})()


class FakeAPI:
    def __init__(self, owner: FakeClient):
        self.owner = owner

    def inspect_image(self, name: str) -> dict:
        return {"Id": self.owner.images.get(name).id}

    def build(self, **kwargs):
        self.owner.builds.append(kwargs)
        assert (Path(kwargs["path"]) / "Dockerfile").is_file()
        if self.owner.fail:
            yield {"stream": "Step 2/5 : RUN apt-get install mitmproxy\n"}
            yield {"error": "E: Unable to locate package mitmproxy\n", "errorDetail": {"message": "..."}}
            return
        yield {"stream": "Step 1/5 : FROM base\n"}
        self.owner.images.present.add(kwargs["tag"])
        self.owner.images.labels[kwargs["tag"]] = kwargs["labels"]


class FakeClient:
    def __init__(self, present: set[str], fail: bool = False):
        self.images = FakeImages(present)
        self.api = FakeAPI(self)
        self.builds: list[dict] = []
        self.fail = fail


@pytest.fixture
def small_claude(tmp_path, monkeypatch) -> Path:
    binary = tmp_path / "claude"
    binary.write_bytes(b"#!/bin/sh\necho 1.0.0\n")
    binary.chmod(0o755)
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(binary))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return binary


def test_missing_images_are_built_once_then_reused(small_claude):
    client = FakeClient({"base:1"})
    lines = []
    tags = image_build.ensure_images(client, "base:1", progress=lambda role, line: lines.append((role, line)))
    assert sorted(b["tag"] for b in client.builds) == sorted(tags.values())
    assert all(b["buildargs"] == {"BASE": "base:1"} and b["decode"] and b["rm"] for b in client.builds)
    assert {b["labels"][images.LABEL] for b in client.builds} == {"agent", "bundle"}
    assert ("agent", "Step 1/5 : FROM base") in lines
    assert image_build.ensure_images(client, "base:1", progress=lambda role, line: lines.append(line)) == tags
    assert len(client.builds) == 2  # the second call built nothing
    image_build.ensure_images(client, "base:1", force=True, progress=lambda role, line: None)
    assert len(client.builds) == 4


def test_a_manifests_image_is_the_agents_base_and_never_the_bundles(small_claude):
    client = FakeClient({"base:1", "theirs:1"})
    tags = image_build.ensure_images(client, "theirs:1", bundle_base="base:1", progress=lambda role, line: None)
    built = {b["labels"][images.LABEL]: b["buildargs"]["BASE"] for b in client.builds}
    assert built == {"agent": "theirs:1", "bundle": "base:1"}
    # The bundle is the same image as the user's own base gives, whatever the agent runs on.
    assert tags["bundle"] == image_build.ensure_images(client, "base:1", progress=lambda role, line: None)["bundle"]
    names = images.image_names("theirs:1", "sha256:theirs", "claude", bundle_base="base:1", bundle_base_id="sha256:b")
    assert images.bases(names) == {"agent": "theirs:1", "bundle": "base:1"}
    assert images.bases({"base": "old:1", "agent": "a", "bundle": "b"}) == {"agent": "old:1", "bundle": "old:1"}


def test_default_progress_goes_to_stderr_with_the_image_name(small_claude, capsys):
    image_build.ensure_images(FakeClient({"base:1"}), "base:1")
    err = capsys.readouterr().err
    assert "[bottle-agent] Step 1/5 : FROM base" in err
    assert "[bottle-bundle] Step 1/5 : FROM base" in err


def test_a_missing_base_image_says_to_build_or_pull_it(small_claude):
    with pytest.raises(BottleRuntimeError) as caught:
        image_build.ensure_images(FakeClient(set()), "my/base:2")
    text = caught.value.render()
    assert "my/base:2" in text and "BOTTLE_BASE_IMAGE" in text and "pull" in text


def test_a_build_error_names_the_image_and_the_error_line(small_claude):
    with pytest.raises(BottleRuntimeError) as caught:
        image_build.ensure_images(FakeClient({"base:1"}, fail=True), "base:1", progress=lambda role, line: None)
    text = caught.value.render()
    assert re.search(r"bottle-(agent|bundle):[0-9a-f]{12}", text)
    assert "Unable to locate package mitmproxy" in text


def test_rebuilds_keep_the_newest_builds_from_the_same_base_and_prune_the_rest(small_claude, tmp_path):
    client = FakeClient({"base:1", "base:2"})
    quiet = lambda role, line: None  # noqa: E731
    first = image_build.ensure_images(client, "base:1", progress=quiet)
    other_base = image_build.ensure_images(client, "base:2", progress=quiet)
    agents = [first["agent"]]
    for release in range(2, 2 + image_build.KEEP_BUILDS):  # each new claude: a new agent image
        small_claude.write_bytes(f"#!/bin/sh\necho {release}.0.0\n".encode())
        built = image_build.ensure_images(client, "base:1", progress=quiet)
        assert built["bundle"] == first["bundle"]
        agents.append(built["agent"])
    # Another checkout of bottle may still launch one of the newest builds: only older ones go.
    assert client.images.removed == [first["agent"]]
    assert set(agents[-image_build.KEEP_BUILDS:]) <= client.images.present
    assert set(other_base.values()) <= client.images.present
