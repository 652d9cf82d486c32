"""BottleSpec: what the user asked for, before any backend has resolved it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .manifest import Manifest


@dataclass(frozen=True)
class BottleSpec:
    """The manifest, the agent to run, whether to copy the user's directory in, that directory, a model script."""

    manifest: Manifest
    agent: str
    copy_cwd: bool = True
    cwd: Path = field(default_factory=Path.cwd)
    model_script: Path | None = None
    """A script of model replies (``--model-script``): the bottle talks to it instead of the model host."""

    def __post_init__(self) -> None:
        self.manifest.agent(self.agent)  # an unknown agent is a usage error before anything starts

    @property
    def bottle_name(self) -> str:
        return self.manifest.agents[self.agent].bottle

    @property
    def backend_field(self) -> str | None:
        return self.manifest.bottles[self.bottle_name].backend
