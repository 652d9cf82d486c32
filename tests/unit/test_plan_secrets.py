"""Secrets in the Plan: placeholders only, and files found where the manifest says."""

from __future__ import annotations

import json
from pathlib import Path

from bottle_core.manifest import Manifest
from bottle_core.plan import MODEL_KEY, NetworkPlan, base_plan
from bottle_core.spec import BottleSpec


def plan_for(tmp_path: Path, secrets: dict):
    path = tmp_path / "bottle.json"
    path.write_text(json.dumps({"bottles": {"dev": {"secrets": secrets}}, "agents": {"demo": {"bottle": "dev"}}}))
    spec = BottleSpec(manifest=Manifest.load(path), agent="demo", copy_cwd=False, cwd=tmp_path)
    network = NetworkPlan(name="net", subnet="10.99.0.0/24", bundle_ip="10.99.0.2", outbound="out")
    return base_plan(spec, backend="fake", stage_dir=tmp_path / "state", network=network, images={})


def test_secret_files_resolve_from_the_manifest_folder_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text("from-home\n")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "token").write_text("from-manifest-folder\n")
    plan = plan_for(tmp_path, {"HOME_TOKEN": {"from_file": "~/token", "hosts": ["a.example"]},
                               "LOCAL_TOKEN": {"from_file": "keys/token", "hosts": ["a.example"]}})
    values = {s.name: s.value() for s in plan.secrets}
    assert values["HOME_TOKEN"] == "from-home" and values["LOCAL_TOKEN"] == "from-manifest-folder"
    assert "from-home" not in plan.model_dump_json()


def test_the_model_key_is_an_optional_secret_for_the_model_host(tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_KEY, raising=False)
    plan = plan_for(tmp_path, {})
    (key,) = plan.secrets
    assert (key.name, key.optional, key.hosts, key.value()) == (MODEL_KEY, True, [plan.proxy.model_host], None)
    assert key.placeholder.startswith("bottle-placeholder-")


def test_values_with_line_breaks_or_nul_are_refused_naming_the_secret(tmp_path, monkeypatch):
    import pytest

    from bottle_core.bundle.contract import secret_table
    from bottle_core.errors import BottleRuntimeError

    (tmp_path / "two-lines").write_text("first\r\nX-Injected: yes\n")
    (tmp_path / "one-line-crlf").write_text("only-line\r\n")
    (tmp_path / "nul").write_text("a\0b")
    monkeypatch.setenv("HOST_LF", "a\nb")
    plan = plan_for(tmp_path, {"SPLIT": {"from_file": "two-lines", "hosts": ["a.example"]},
                               "FINE": {"from_file": "one-line-crlf", "hosts": ["a.example"]}})
    with pytest.raises(BottleRuntimeError) as refused:
        secret_table(plan)
    assert "secret SPLIT" in refused.value.render() and "line break" in refused.value.render()
    assert {s.name: s for s in plan.secrets}["FINE"].value() == "only-line"
    for name, source in (("NUL", {"from_file": "nul"}), ("LF", {"from_env": "HOST_LF"})):
        with pytest.raises(BottleRuntimeError, match=f"secret {name}"):
            secret_table(plan_for(tmp_path, {name: {**source, "hosts": ["a.example"]}}))


def test_swap_in_defaults_to_headers_and_reaches_the_bundle(tmp_path, monkeypatch):
    from bottle_core.bundle.contract import secret_table

    monkeypatch.setenv("HOST_A", "a-value")
    monkeypatch.setenv("HOST_B", "b-value")
    plan = plan_for(tmp_path, {"A": {"from_env": "HOST_A", "hosts": ["a.example"]},
                               "B": {"from_env": "HOST_B", "hosts": ["a.example"], "swap_in": ["header", "body"]}})
    table = {row["name"]: row for row in secret_table(plan)}
    assert table["A"]["swap_in"] == ["header"] and table["B"]["swap_in"] == ["header", "body"]


def test_a_secret_with_no_value_names_the_manifest_and_the_field_that_declares_it(tmp_path, monkeypatch):
    import pytest

    from bottle_core.bundle.contract import secret_table
    from bottle_core.errors import ManifestError

    monkeypatch.delenv("HOST_UNSET", raising=False)
    for source, key, said in (({"from_env": "HOST_UNSET"}, "from_env", "host variable HOST_UNSET is not set"),
                              ({"from_file": "no-such-file"}, "from_file", "no-such-file cannot be read")):
        plan = plan_for(tmp_path, {"TOK": {**source, "hosts": ["a.example"]}})
        with pytest.raises(ManifestError) as refused:
            secret_table(plan)
        shown = refused.value.render()
        assert shown.startswith(f"{tmp_path / 'bottle.json'}: bottles.dev.secrets.TOK.{key}: secret TOK: ")
        assert said in shown and "remove the secret from the manifest" in shown
