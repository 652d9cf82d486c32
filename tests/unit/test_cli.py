"""The ``bottle`` console script as a user meets it: exit codes, one-line errors, the printed Plan.

Every case runs the installed console script in a subprocess, so what is
checked is what a user sees on the terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bottle_core.testing import SEED_MANIFEST

BOTTLE = Path(sys.executable).with_name("bottle")


def run_bottle(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script with a clean bottle environment; state goes under ``cwd``."""
    assert BOTTLE.is_file(), f"the bottle console script is not installed next to {sys.executable}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("BOTTLE_")}
    base.update({"XDG_STATE_HOME": str(cwd / "state"), "HOME": str(cwd / "home")})
    return subprocess.run([str(BOTTLE), *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    """The command failed with ``code`` and exactly one line on stderr containing every ``expected``."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert result.returncode == code, lines[0]
    return lines[0]


def with_bottle(**fields) -> dict:
    return {"bottles": {"dev": fields}, "agents": {}}


def with_agent(**fields) -> dict:
    return {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev", **fields}}}


# (case id, manifest content: dict written as JSON or str written verbatim, file name, text naming the place)
BAD_MANIFESTS = [
    ("unknown-key", with_bottle(colour="red"), "bottle.json", "bottles.dev.colour"),
    ("wrong-type", with_bottle(cpus="lots"), "bottle.json", "bottles.dev.cpus"),
    ("agent-names-missing-bottle", {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "prod"}}},
     "bottle.json", "agents.demo.bottle"),
    ("agent-without-bottle", {"bottles": {"dev": {}}, "agents": {"demo": {}}}, "bottle.json", "agents.demo.bottle"),
    ("missing-skill", with_agent(skills=["present", "absent"]), "bottle.json", "agents.demo.skills[1]"),
    ("bad-bottle-name", {"bottles": {"Dev Box": {}}, "agents": {}}, "bottle.json", "bottles.Dev Box"),
    ("bad-skill-name", with_agent(skills=["Bad Skill"]), "bottle.json", "agents.demo.skills[0]"),
    ("prompt-file-outside", with_agent(prompt_file="../outside.md"), "bottle.json", "agents.demo.prompt_file"),
    ("prompt-file-missing", with_agent(prompt_file="nowhere.md"), "bottle.json", "agents.demo.prompt_file"),
    ("prompt-and-prompt-file", with_agent(prompt="Be brief.", prompt_file="prompt.md"), "bottle.json", "agents.demo"),
    ("invalid-toml", "[bottles.dev\ncpus = 2\n", "bottle.toml", "invalid TOML"),
    ("invalid-json", '{"bottles": ', "bottle.json", "invalid JSON"),
    ("not-a-table", "[1, 2]", "bottle.json", "bottle.json"),
    ("bad-memory-size", with_bottle(memory="lots"), "bottle.json", "bottles.dev.memory"),
    ("too-little-memory", with_bottle(memory=1024), "bottle.json", "bottles.dev.memory"),
    ("secret-without-source", with_bottle(secrets={"TOKEN": {"hosts": ["api.example.com"]}}), "bottle.json",
     "bottles.dev.secrets.TOKEN"),
    ("secret-bad-env-name", with_bottle(secrets={"1TOKEN": {"from_env": "T", "hosts": ["a.example"]}}),
     "bottle.json", "bottles.dev.secrets.1TOKEN"),
    ("egress-not-a-host", with_bottle(egress={"allow": ["http://example.com/"]}), "bottle.json",
     "bottles.dev.egress.allow[0]"),
    ("bad-supervise-mode", with_agent(supervise={"mode": "loud"}), "bottle.json", "agents.demo.supervise.mode"),
    ("toml-unknown-key", "[bottles.dev]\nimage = 'x'\nimgae = 'y'\n", "bottle.toml", "bottles.dev.imgae"),
]


@pytest.mark.parametrize(("content", "name", "where"), [case[1:] for case in BAD_MANIFESTS],
                         ids=[case[0] for case in BAD_MANIFESTS])
def test_a_bad_manifest_is_one_line_naming_the_file_and_field(manifest_factory, tmp_path, content, name, where):
    (tmp_path / "outside.md").write_text("out of reach")
    (tmp_path / "project").mkdir()
    path = manifest_factory(content, fmt="json" if name.endswith(".json") else "toml", name=f"project/{name}",
                            skills=["present"], files={"project/prompt.md": "a prompt"})
    # Skills are looked up beside the manifest: put the one skill there.
    (tmp_path / "skills").rename(tmp_path / "project" / "skills")

    result = run_bottle("validate", "-m", str(path), cwd=tmp_path)

    assert_one_line_error(result, 2, str(path), where)
    assert result.stdout == ""


def test_a_missing_manifest_file_is_named(tmp_path):
    result = run_bottle("validate", "-m", "nothing-here.toml", cwd=tmp_path)

    assert_one_line_error(result, 2, "nothing-here.toml", "no such file")


def test_the_default_manifest_is_bottle_toml_in_the_current_folder(tmp_path):
    assert_one_line_error(run_bottle("validate", cwd=tmp_path), 2, "bottle.toml")


def test_a_good_manifest_validates(manifest_factory, tmp_path):
    path = manifest_factory(fmt="toml")

    result = run_bottle("validate", "-m", str(path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok (1 bottles, 1 agents)"


GATED = {"bottles": {"dev": {"git": {"origin": {"url": "https://git.test/repo.git"}}}},
         "agents": {"demo": {"bottle": "dev", "supervise": {"mode": "enforce", "deny": ["Bash(rm -rf:*)"]}},
                    "quiet": {"bottle": "dev", "supervise": {"mode": "off"}}}}


def test_validate_accepts_git_remotes_and_supervision_quietly(manifest_factory, tmp_path):
    path = manifest_factory(GATED)

    result = run_bottle("validate", "-m", str(path), cwd=tmp_path)

    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.strip() == f"{path}: ok (1 bottles, 2 agents)"


def test_plan_of_an_unknown_agent_names_the_agents(manifest_factory, tmp_path):
    path = manifest_factory(SEED_MANIFEST, fmt="json")

    result = run_bottle("plan", "ghost", "-m", str(path), cwd=tmp_path)

    assert_one_line_error(result, 2, "'ghost'", "demo")


def test_an_unknown_backend_names_the_installed_ones(manifest_factory, tmp_path):
    path = manifest_factory(SEED_MANIFEST, fmt="json")
    installed = json.loads(run_bottle("backends", "--json", cwd=tmp_path).stdout)

    result = run_bottle("--backend", "nope", "plan", "demo", "-m", str(path), cwd=tmp_path)

    line = assert_one_line_error(result, 2, "'nope'", "installed:")
    assert installed, "no backend is installed at all"
    for backend in installed:
        assert backend["name"] in line


def test_the_backend_can_come_from_the_environment(manifest_factory, tmp_path):
    path = manifest_factory(SEED_MANIFEST, fmt="json")

    result = run_bottle("plan", "demo", "-m", str(path), cwd=tmp_path, env={"BOTTLE_BACKEND": "nope"})

    assert_one_line_error(result, 2, "'nope'")


def test_backends_json_lists_docker(tmp_path):
    result = run_bottle("backends", "--json", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["docker"]["distribution"] == "bottle-docker"
    assert set(rows["docker"]) >= {"name", "distribution", "version", "available", "reason"}


def test_an_unknown_command_is_a_usage_error(tmp_path):
    result = run_bottle("frobnicate", cwd=tmp_path)

    assert result.returncode == 2
    assert "frobnicate" in result.stderr and "Traceback" not in result.stderr


def test_help_imports_no_backend_and_no_engine_sdk(tmp_path):
    code = textwrap.dedent("""
        import sys
        from bottle_core.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"docker", "smolmachines", "bottle_docker", "bottle_smol"})
        print("HEAVY", heavy)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


# -- broken plugins, as a user meets them ------------------------------------------------------------


@pytest.fixture
def broken_plugin_site(tmp_path) -> dict[str, str]:
    """An extra site folder holding a distribution whose bottle.plugins entry point cannot be imported."""
    site = tmp_path / "site"
    info = site / "bottle_broken-0.3.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bottle-broken\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[bottle.plugins]\nbroken = bottle_broken_not_there\n")
    return {"PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_a_broken_plugin_is_listed_with_its_error(broken_plugin_site, tmp_path):
    result = run_bottle("plugins", "--json", cwd=tmp_path, env=broken_plugin_site)

    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken"]["distribution"] == "bottle-broken"
    assert rows["broken"]["loaded"] is False
    assert "bottle_broken_not_there" in rows["broken"]["error"]


def test_a_broken_plugin_does_not_break_other_commands(broken_plugin_site, manifest_factory, tmp_path):
    result = run_bottle("validate", "-m", str(manifest_factory()), cwd=tmp_path, env=broken_plugin_site)

    assert result.returncode == 0, result.stderr


def test_strict_plugins_turns_a_broken_plugin_into_one_line(broken_plugin_site, tmp_path):
    env = {**broken_plugin_site, "BOTTLE_STRICT_PLUGINS": "1"}

    result = run_bottle("hello", cwd=tmp_path, env=env)

    assert_one_line_error(result, 1, "'broken'", "bottle-broken")
