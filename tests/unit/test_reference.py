"""docs/manifest.md and the JSON Schema come from the models, and stay in step with them."""

from __future__ import annotations

import json
from pathlib import Path

from bottle_core.manifest import Manifest
from bottle_core.reference import _models, render

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "manifest.md"


def test_manifest_reference_is_current():
    assert DOC.read_text() == render(), "regenerate with: bottle manifest reference > docs/manifest.md"


def test_every_field_is_documented():
    schema = json.dumps(Manifest.model_json_schema())
    models = _models(Manifest, [])
    assert len(models) >= 8
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f'"{name}"' in schema


def test_the_settings_page_lists_every_setting_as_the_code_documents_it():
    from bottle_core.settings import documented

    page = (ROOT / "docs" / "settings.md").read_text()
    for variable, meaning in documented():
        assert f"| `{variable}` | {meaning} |" in page, variable


def test_the_settings_page_lists_every_installed_backends_settings_and_core_names_none():
    from bottle_core.plugins import describe_backends
    from bottle_core.settings import documented

    page = (ROOT / "docs" / "settings.md").read_text()
    declared = [s for row in describe_backends() for s in row["settings"]]
    assert declared, "the installed backends declare their settings"
    for setting in declared:
        assert f"| `{setting['variable']}` | {setting['meaning']} |" in page, setting["variable"]
    assert not {s["variable"] for s in declared} & {variable for variable, _ in documented()}
    assert not [variable for variable, _ in documented() if "DOCKER" in variable or "SMOL" in variable]


def test_settings_are_parsed_from_the_environment_given():
    from bottle_core.settings import PINNED_CLAUDE_VERSION, current

    config = current({"BOTTLE_PLUGINS": "a, b,", "BOTTLE_TRACE_PLUGINS": "0", "BOTTLE_STRICT_PLUGINS": "yes",
                      "BOTTLE_BASE_IMAGE": ""})
    assert config.plugins == {"a", "b"} and not config.trace_plugins and config.strict_plugins
    assert config.base_image is None and config.claude_version == PINNED_CLAUDE_VERSION
    assert current({"BOTTLE_PLUGINS": ""}).plugins == frozenset() and current({}).plugins is None


def test_no_module_but_settings_reads_a_bottle_variable():
    import re

    readers = []
    for package in [ROOT / "bottle_core", *(ROOT / "plugins").glob("*/bottle_*")]:
        for path in package.rglob("*.py"):
            if "image" in path.relative_to(package).parts or path.name == "settings.py":
                continue
            if re.search(r"environ(\.get)?\(?\[?[\"']BOTTLE_|getenv\([\"']BOTTLE_", path.read_text()):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
