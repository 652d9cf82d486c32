"""The docker backend's own unit tests: no engine needed, bottle's pytest plugin for fixtures and fakes."""

pytest_plugins = ["bottle_core.testing"]
