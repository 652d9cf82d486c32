"""docs/manifest.md and the JSON Schema come from the models, and stay in step with them."""

from __future__ import annotations

import json
from pathlib import Path

from bottle_core.manifest import Manifest
from bottle_core.reference import _models, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"


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
