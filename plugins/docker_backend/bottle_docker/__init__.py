"""bottle's Docker backend: agent containers on an isolated network behind a sidecar bundle."""
