"""The manifest reference (docs/manifest.md), generated from the manifest models themselves."""

from __future__ import annotations

import typing
from types import UnionType

from pydantic import BaseModel

from .manifest import AgentDef, BottleDef, Manifest

HEADER = """# Manifest reference

The manifest is `bottle.toml` (or a `.json` file with the same structure),
passed with `-m PATH` or found in the current directory. An unknown or
misspelled key, in any table, is an error naming the file, the key's path and
the nearest valid name. Names of bottles, agents, skills and git remotes are safe slugs:
1-40 lowercase letters, digits, `-` or `_`, starting with a letter or digit.

This page is generated from the models (`bottle manifest reference`); the
JSON Schema comes from the same models (`bottle manifest schema`).
"""


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"table of {_type_name(args[1])}"
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{value!r}`" if value not in (None, [], {}) else "-"


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if model in seen:
        return seen
    seen.append(model)
    for field in model.model_fields.values():
        for arg in _nested(field.annotation):
            _models(arg, seen)
    return seen


def _nested(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested(arg)]


def render() -> str:
    """The whole reference as Markdown."""
    parts = [HEADER]
    for model in _models(Manifest, []):
        title = {Manifest: "Manifest (top level)", BottleDef: "BottleDef: `[bottles.NAME]`",
                 AgentDef: "AgentDef: `[agents.NAME]`"}.get(model, model.__name__)
        parts.append(f"## {model.__name__}\n\n{title}. {(model.__doc__ or '').strip()}\n")
        parts.append("| field | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            parts.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                         f"{(field.description or '').replace('|', '/')} |")
        parts.append("")
    return "\n".join(parts)
