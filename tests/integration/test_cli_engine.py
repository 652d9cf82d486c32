"""The ``bottle`` console script where the docker backend must ask the engine (a free subnet, the base image)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bottle_core.plan import Plan
from bottle_core.testing import SEED_MANIFEST

from ..unit.test_cli import run_bottle

pytestmark = pytest.mark.integration


def test_plan_prints_a_plan_that_parses_back(manifest_factory, tmp_path):
    path = manifest_factory(SEED_MANIFEST, fmt="json")

    result = run_bottle("plan", "demo", "-m", str(path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    plan = Plan.model_validate_json(result.stdout)
    assert (plan.agent, plan.bottle) == ("demo", "dev")
    assert ipaddress.ip_address(plan.network.bundle_ip) in ipaddress.ip_network(plan.network.subnet)
    assert plan.proxy.listen_host == plan.network.bundle_ip
    assert plan.network.name == f"bottle-{plan.slug}"
    assert Path(plan.state_dir).parent == tmp_path / "state" / "bottle"
    # Printing a plan writes nothing: no state dir, no prompt file.
    assert not (tmp_path / "state").exists()
