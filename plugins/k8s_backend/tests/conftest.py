"""The k8s backend's own tests: bottle's pytest plugin (plans from manifests, no cluster needed)."""

pytest_plugins = ["bottle_core.testing"]
