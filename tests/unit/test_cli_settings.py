"""Settings of the command line and the manifest that a user sets by hand: each one named where it is wrong."""

from __future__ import annotations

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
