"""The manifest models: TOML and JSON alike, defaults, resolution of skills and prompts, the schema."""

from __future__ import annotations

import pytest

from bottle_core.errors import ManifestError
from bottle_core.manifest import Manifest, memory_bytes
from bottle_core.testing import SEED_MANIFEST

FULL = {
    "bottles": {
        "dev": {
            "cpus": 1.5,
            "memory": "512m",
            "pids": 256,
            "egress": {"allow": ["Example.COM", "*.pypi.example"]},
            "git": {"origin": {"url": "https://git.example/repo.git", "push": {"allow": ["refs/heads/feature/*"]}}},
            "secrets": {"GH_TOKEN": {"from_env": "GH_TOKEN", "hosts": ["api.github.example"]}},
            "env": {"LANG": "C.UTF-8"},
        }
    },
    "agents": {
        "demo": {"bottle": "dev", "prompt_file": "prompts/demo.md", "skills": ["review"], "model": "claude-x",
                 "claude_args": ["--verbose"], "supervise": {"mode": "enforce", "deny": ["WebFetch"]}}
    },
}


def test_toml_and_json_give_the_same_manifest(manifest_factory):
    files = {"prompts/demo.md": "Review carefully."}
    from_toml = Manifest.load(manifest_factory(FULL, fmt="toml", skills=["review"], files=files))
    from_json = Manifest.load(manifest_factory(FULL, fmt="json"))

    assert from_toml.model_dump() == from_json.model_dump()


def test_fields_are_read_and_normalised(manifest_factory, tmp_path):
    path = manifest_factory(FULL, skills=["review"], files={"prompts/demo.md": "Review carefully."})
    manifest = Manifest.load(path)

    bottle = manifest.bottles["dev"]
    assert bottle.egress.allow == ["example.com", "*.pypi.example"]
    assert bottle.git["origin"].push.allow == ["refs/heads/feature/*"]
    assert bottle.git["origin"].push.protected == ["refs/heads/main", "refs/heads/master"]
    assert memory_bytes(bottle.memory) == 512 * 1024**2
    assert manifest.prompt_text("demo") == "Review carefully."
    assert manifest.find_skill("review") == tmp_path / "skills" / "review"
    assert manifest.source == str(path) and manifest.base_dir == tmp_path


def test_defaults_of_the_seed_manifest(manifest_factory):
    manifest = Manifest.load(manifest_factory(SEED_MANIFEST))

    bottle, agent = manifest.bottles["dev"], manifest.agents["demo"]
    assert (bottle.backend, bottle.cpus, memory_bytes(bottle.memory), bottle.pids) == (None, 2.0, 2 * 1024**3, 1024)
    assert bottle.egress.allow == [] and bottle.secrets == {}
    assert agent.supervise.mode == "audit"  # every hook event recorded, nothing judged
    assert manifest.prompt_text("demo") == "You are demo. Be brief."


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("64m", 64 * 1024**2), ("2G", 2 * 1024**3),
                                            ("512mb", 512 * 1024**2), (128 * 1024**2, 128 * 1024**2)])
def test_memory_sizes(text, size):
    assert memory_bytes(text) == size


def test_skills_are_found_in_the_home_folder_after_the_manifest_folder(manifest_factory, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".claude" / "skills" / "shared").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    data = {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev", "skills": ["local", "shared"]}}}

    manifest = Manifest.load(manifest_factory(data, skills=["local"]))

    assert manifest.find_skill("local") == tmp_path / "skills" / "local"
    assert manifest.find_skill("shared") == home / ".claude" / "skills" / "shared"


def test_a_skill_beside_the_manifest_wins_over_the_home_folder(manifest_factory, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".claude" / "skills" / "review").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))

    manifest = Manifest.load(manifest_factory(FULL, skills=["review"], files={"prompts/demo.md": "x"}))

    assert manifest.find_skill("review") == tmp_path / "skills" / "review"


def test_an_unknown_agent_names_the_known_ones(manifest_factory):
    manifest = Manifest.load(manifest_factory())

    with pytest.raises(ManifestError) as caught:
        manifest.agent("ghost")

    assert caught.value.exit_code == 2
    assert "'ghost'" in caught.value.render() and "demo" in caught.value.render()


def test_several_problems_are_counted_in_one_line(manifest_factory):
    path = manifest_factory({"bottles": {"dev": {"cpus": "x", "pids": "y", "colour": 1}}, "agents": {}}, fmt="json")

    with pytest.raises(ManifestError) as caught:
        Manifest.load(path)

    line = caught.value.render()
    assert "\n" not in line and "2 more problems" in line
    assert caught.value.field is not None and caught.value.field.startswith("bottles.dev.")


def test_a_field_path_is_given_for_nested_lists(manifest_factory):
    data = {"bottles": {"dev": {"egress": {"allow": ["ok.example", "not a host"]}}}, "agents": {}}

    with pytest.raises(ManifestError) as caught:
        Manifest.load(manifest_factory(data, fmt="json"))

    assert caught.value.field == "bottles.dev.egress.allow[1]"


def test_the_schema_describes_every_field():
    schema = Manifest.model_json_schema()

    def undescribed(model_schema: dict) -> list[str]:
        return [name for name, prop in model_schema.get("properties", {}).items() if "description" not in prop]

    missing = {name: undescribed(defn) for name, defn in schema.get("$defs", {}).items()}
    missing["Manifest"] = undescribed(schema)
    assert {name: fields for name, fields in missing.items() if fields} == {}
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("entry", "says"), [
    ("ftp://files.example", "only http:// or https://"),
    ("https://api.example/v1", "not a URL with a path"),
    ("api.example:70000", "from 1 to 65535"),
])
def test_an_egress_entry_error_names_the_field_and_how_to_write_it(manifest_factory, entry, says):
    data = {"bottles": {"dev": {"egress": {"allow": ["ok.example", entry]}}}, "agents": {}}

    with pytest.raises(ManifestError) as caught:
        Manifest.load(manifest_factory(data, fmt="json"))

    assert caught.value.field == "bottles.dev.egress.allow[1]" and says in caught.value.render()


def test_egress_entries_keep_their_port_and_scheme(manifest_factory):
    data = {"bottles": {"dev": {"egress": {"allow": ["HTTP://Plain.example", "ssh.example:22", "*.cdn.example"]}}},
            "agents": {}}
    manifest = Manifest.load(manifest_factory(data, fmt="json"))
    assert manifest.bottles["dev"].egress.allow == ["http://plain.example", "ssh.example:22", "*.cdn.example"]


# Every table of the manifest, with the least a table there needs to be valid, and where it sits.
_TABLES = {
    "Manifest": ((), {}),
    "BottleDef": (("bottles", "dev"), {}),
    "Egress": (("bottles", "dev", "egress"), {}),
    "GitRemote": (("bottles", "dev", "git", "origin"), {"url": "https://git.example/repo.git"}),
    "PushPolicy": (("bottles", "dev", "git", "origin", "push"), {}),
    "GitAuthor": (("bottles", "dev", "git_author"), {}),
    "Secret": (("bottles", "dev", "secrets", "TOKEN"), {"from_env": "TOKEN", "hosts": ["api.example"]}),
    "Workspace": (("bottles", "dev", "workspace"), {}),
    "AgentDef": (("agents", "demo"), {"bottle": "dev"}),
    "Supervise": (("agents", "demo", "supervise"), {}),
}


def _manifest_with(path: tuple[str, ...], table: dict) -> dict:
    """A valid manifest (a bottle 'dev', an agent 'demo' of it) with ``table`` at ``path``."""
    data: dict = {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev"}}}
    if path == ():
        return {**data, **table}
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if "git" in path and part == "origin":
            node.setdefault("url", "https://git.example/repo.git")
    node[path[-1]] = {**node.get(path[-1], {}), **table}
    return data


def _reachable_models() -> set[str]:
    from pydantic import BaseModel

    from bottle_core.manifest import _unwrap

    def models_in(annotation) -> list[type]:
        from typing import get_args

        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [found for arg in get_args(annotation) for found in models_in(arg)]

    seen, todo = set(), [Manifest]
    while todo:
        model = todo.pop()
        if model.__name__ not in seen:
            seen.add(model.__name__)
            todo += [m for field in model.model_fields.values() for m in models_in(field.annotation)]
    return seen


def test_the_typo_cases_cover_every_table_of_the_manifest():
    assert set(_TABLES) == _reachable_models()


@pytest.mark.parametrize("table", sorted(_TABLES))
def test_a_misspelled_key_in_any_table_names_the_file_the_field_and_the_nearest_valid_name(table, manifest_factory):
    import bottle_core.manifest as models

    path, least = _TABLES[table]
    for name in getattr(models, table).model_fields:
        typo = name[:-1] if len(name) > 3 else name + "s"
        file = manifest_factory(_manifest_with(path, {**least, typo: 1}), fmt="json")

        with pytest.raises(ManifestError) as caught:
            Manifest.load(file)

        where = ".".join((*path, typo))
        assert caught.value.render().startswith(f"{file}: {where}: unknown key {typo!r}"), caught.value.render()
        assert f"did you mean {name!r}?" in caught.value.render()


def test_an_unknown_key_like_no_valid_one_gets_the_valid_keys_of_its_table(manifest_factory):
    file = manifest_factory(_manifest_with(("bottles", "dev", "workspace"), {"zzz": True}), fmt="json")

    with pytest.raises(ManifestError) as caught:
        Manifest.load(file)

    assert caught.value.field == "bottles.dev.workspace.zzz"
    assert "valid keys here: include_ignored, exclude, include" in caught.value.render()


def test_a_misspelled_key_in_toml_is_refused_too(manifest_factory):
    file = manifest_factory({"bottles": {"dev": {"memroy": "1g"}}, "agents": {}}, fmt="toml")

    with pytest.raises(ManifestError) as caught:
        Manifest.load(file)

    assert caught.value.exit_code == 2
    assert caught.value.render() == f"{file}: bottles.dev.memroy: unknown key 'memroy' (did you mean 'memory'?)"


@pytest.mark.parametrize("name", ["GH_TOKEN", "ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"])
def test_env_under_a_secrets_name_is_refused(manifest_factory, name):
    bottle = {"env": {name: "a-value-the-agent-would-hold", "LANG": "C.UTF-8"},
              "secrets": {"GH_TOKEN": {"from_env": "GH_TOKEN", "hosts": ["api.github.example"]}}}
    file = manifest_factory({"bottles": {"dev": bottle}, "agents": {}}, fmt="json")

    with pytest.raises(ManifestError) as caught:
        Manifest.load(file)

    assert caught.value.field == "bottles.dev"
    assert f"env {name!r} is a secret's name" in caught.value.render() and "remove it from env" in caught.value.render()


def test_env_beside_secrets_under_other_names_is_kept(manifest_factory):
    bottle = {"env": {"LANG": "C.UTF-8", "GH_HOST": "github.example"},
              "secrets": {"GH_TOKEN": {"from_env": "GH_TOKEN", "hosts": ["api.github.example"]}}}

    manifest = Manifest.load(manifest_factory({"bottles": {"dev": bottle}, "agents": {}}, fmt="json"))

    assert manifest.bottles["dev"].env == {"LANG": "C.UTF-8", "GH_HOST": "github.example"}


@pytest.mark.parametrize(("bottle", "field", "says"), [
    ({"image": "--privileged"}, "bottles.dev.image", "not an image reference"),
    ({"image": "debian bookworm"}, "bottles.dev.image", "not an image reference"),
    ({"git": {"o": {"url": "https://git.example/x", "token_env": "GH", "token_user": "a:b"}}},
     "bottles.dev.git.o.token_user", "without spaces or ':'"),
    ({"git": {"o": {"url": "https://git.example/x", "token_env": "GH", "token_user": "a\nHost: b"}}},
     "bottles.dev.git.o.token_user", "for HTTP basic auth"),
])
def test_an_image_or_token_user_an_engine_or_forge_would_misread_names_its_field(manifest_factory, bottle, field, says):
    with pytest.raises(ManifestError) as caught:
        Manifest.load(manifest_factory({"bottles": {"dev": bottle}, "agents": {}}, fmt="json"))
    assert caught.value.field == field and says in caught.value.render()
    fine = {"image": "registry.example.com:5000/team/app:1.2@sha256:" + "a" * 64,
            "git": {"o": {"url": "https://git.example/x", "token_env": "GH", "token_user": "oauth2"}}}
    assert Manifest.load(manifest_factory({"bottles": {"dev": fine}, "agents": {}}, fmt="json"))


@pytest.mark.parametrize("name, text", [
    ("bottle.toml", '[bottles.dev]\n[agents.dev]\nbottle = "dev"\n'),
    ("bottle.json", '{"bottles": {"dev": {}}, "agents": {"dev": {"bottle": "dev"}}}'),
])
def test_a_byte_order_mark_some_editors_write_is_read_past(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert Manifest.load(path).agents["dev"].bottle == "dev"
