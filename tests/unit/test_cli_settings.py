"""Settings of the command line and the manifest that a user sets by hand: each one named where it is wrong."""

from __future__ import annotations

import json

import pytest

from .test_cli import assert_one_line_error, run_bottle


def _bottle_backend(manifest_factory, backend: str):
    return manifest_factory({"bottles": {"dev": {"backend": backend}}, "agents": {"demo": {"bottle": "dev"}}},
                            fmt="json")


def test_a_misspelled_backend_field_is_named_at_its_field_with_the_nearest_backend(manifest_factory, tmp_path):
    path = _bottle_backend(manifest_factory, "dockr")

    result = run_bottle("plan", "demo", "-m", str(path), cwd=tmp_path)

    assert_one_line_error(result, 2, f"{path}: bottles.dev.backend: unknown backend 'dockr'", "did you mean 'docker'?")


@pytest.mark.parametrize(("option", "env"), [(["--backend", "nope"], {}), ([], {"BOTTLE_BACKEND": "nope"})])
def test_the_option_and_the_variable_win_over_the_backend_field(manifest_factory, tmp_path, option, env):
    path = _bottle_backend(manifest_factory, "dockr")

    result = run_bottle(*option, "plan", "demo", "-m", str(path), cwd=tmp_path, env=env)

    line = assert_one_line_error(result, 2, "unknown backend 'nope'")
    assert "dockr" not in line and "bottles.dev.backend" not in line


def test_validate_warns_of_a_backend_field_no_installed_backend_answers_to(manifest_factory, tmp_path):
    path = _bottle_backend(manifest_factory, "dockr")

    result = run_bottle("validate", "-m", str(path), cwd=tmp_path)

    assert result.returncode == 0 and "ok" in result.stdout
    assert "bottles.dev.backend: no backend 'dockr' is installed here" in result.stderr
    assert "did you mean 'docker'?" in result.stderr
    quiet = run_bottle("validate", "-m", str(_bottle_backend(manifest_factory, "docker")), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize(("option", "env"), [(["--debug"], {}), ([], {"BOTTLE_DEBUG": "1"})])
def test_debug_shows_the_traceback_behind_a_one_line_error(manifest_factory, tmp_path, option, env):
    path = manifest_factory({"bottles": {"dev": {"memroy": "1g"}}, "agents": {}}, fmt="json")

    shown = run_bottle(*option, "validate", "-m", str(path), cwd=tmp_path, env=env)
    plain = run_bottle("validate", "-m", str(path), cwd=tmp_path, env={"BOTTLE_DEBUG": "0"})

    assert shown.returncode == plain.returncode == 2
    assert "Traceback (most recent call last)" in shown.stderr and "bottles.dev.memroy" in shown.stderr
    assert_one_line_error(plain, 2, "bottles.dev.memroy", "did you mean 'memory'?")


def test_version_names_the_installed_bottle_core(tmp_path):
    from importlib.metadata import version

    result = run_bottle("--version", cwd=tmp_path)

    assert result.returncode == 0 and result.stdout.strip() == f"bottle, version {version('bottle-core')}"


def test_manifest_schema_is_the_models_schema_and_refuses_unknown_keys(tmp_path):
    from bottle_core.manifest import Manifest

    result = run_bottle("manifest", "schema", cwd=tmp_path)

    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema == Manifest.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(definition.get("additionalProperties") is False for definition in schema["$defs"].values())


def test_validate_refuses_a_websocket_host_off_the_allow_list_and_warns_of_a_secrets(manifest_factory, tmp_path):
    egress = {"allow": ["chat.example"], "websockets": ["chat.example"]}
    secrets = {"TOKEN": {"from_env": "TOKEN", "hosts": ["chat.example", "elsewhere.example"]}}
    warned = run_bottle("validate", "-m", str(manifest_factory(
        {"bottles": {"dev": {"egress": egress, "secrets": secrets}}, "agents": {}}, fmt="json")), cwd=tmp_path)
    refused = run_bottle("validate", "-m", str(manifest_factory(
        {"bottles": {"dev": {"egress": {**egress, "websockets": ["live.example"]}}}, "agents": {}}, fmt="json")),
        cwd=tmp_path)

    assert warned.returncode == 0 and "ok" in warned.stdout
    assert warned.stderr == ("bottle: warning: bottles.dev.secrets.TOKEN.hosts[1]: 'elsewhere.example' is not on the "
                             "allow-list, so the secret is never sent there (add it to egress.allow)\n")
    assert_one_line_error(refused, 2, "bottles.dev.egress.websockets[0]", "'live.example' is not on the allow-list")
