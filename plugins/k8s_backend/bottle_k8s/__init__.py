"""bottle-k8s: bottles on a Kubernetes cluster (the agent and its bundle in two pods)."""
