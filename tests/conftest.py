"""Every test folder of this repository opts in to bottle's pytest plugin (fixtures and fakes)."""

pytest_plugins = ["bottle_core.testing"]
