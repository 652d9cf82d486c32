"""A limit the manifest sets and the backend does not apply as written is warned about, never dropped unsaid."""

from __future__ import annotations

import pytest

from bottle_core.manifest import Manifest
from bottle_core.plan import base_plan
from bottle_core.spec import BottleSpec
from bottle_core.testing import FAKE_IMAGES, FAKE_NETWORK

UNAPPLIED = {"pids": "not applied (no per-bottle process limit)"}


def plan_of(manifest_factory, tmp_path, bottle: dict, unapplied=None):
    path = manifest_factory({"bottles": {"dev": bottle}, "agents": {"demo": {"bottle": "dev"}}}, fmt="json")
    spec = BottleSpec(manifest=Manifest.load(path), agent="demo", copy_cwd=False, cwd=tmp_path)
    return base_plan(spec, backend="tiny", stage_dir=tmp_path / "state", network=FAKE_NETWORK.model_copy(),
                     images=dict(FAKE_IMAGES), unapplied=unapplied)


def test_a_set_limit_the_backend_does_not_apply_is_named_on_stderr(manifest_factory, tmp_path, capsys):
    plan = plan_of(manifest_factory, tmp_path, {"pids": 300, "memory": "1g"}, UNAPPLIED)

    err = capsys.readouterr().err
    assert err == ("bottle: warning: bottles.dev.pids: not applied (no per-bottle process limit) on the tiny backend "
                   "(see docs/backends.md)\n")
    assert plan.resources.pids == 300  # the plan still records what was asked


@pytest.mark.parametrize(("bottle", "unapplied"), [
    ({"memory": "1g"}, UNAPPLIED),  # pids left at its default: nothing was asked that goes unapplied
    ({"pids": 300}, None),  # a backend that applies every limit
])
def test_no_warning_when_nothing_asked_goes_unapplied(manifest_factory, tmp_path, capsys, bottle, unapplied):
    plan_of(manifest_factory, tmp_path, bottle, unapplied)

    assert capsys.readouterr().err == ""
