"""A run's name (its slug): never one an earlier run's state folder holds."""

from __future__ import annotations

import pytest
from bottle_core import plan
from bottle_core.errors import BottleRuntimeError


def test_a_slug_names_the_agent_and_is_new_in_the_state_folder(tmp_path, monkeypatch):
    draws = iter(["0000aaaa", "0000aaaa", "0000bbbb"])
    monkeypatch.setattr(plan.secrets, "token_hex", lambda n: next(draws))
    (tmp_path / "demo-0000aaaa").mkdir()  # an earlier run's folder, kept for `bottle logs`
    assert plan.new_slug("demo", tmp_path) == "demo-0000bbbb"


def test_a_state_folder_with_no_free_name_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(plan.secrets, "token_hex", lambda n: "0000aaaa")
    (tmp_path / "demo-0000aaaa").mkdir()
    with pytest.raises(BottleRuntimeError) as caught:
        plan.new_slug("demo", tmp_path)
    assert str(tmp_path) in caught.value.render() and "remove old runs" in caught.value.render()


def test_slugs_of_one_agent_differ():
    assert len({plan.new_slug("a" * 40) for _ in range(50)}) == 50
    assert all(s.startswith("a" * 24 + "-") for s in {plan.new_slug("a" * 40)})
