"""The ``BOTTLE_K8S_*`` variables this backend reads (declared through ``backend_settings``)."""

from __future__ import annotations

from bottle_core.settings import BackendSetting

NAMESPACE = BackendSetting("k8s_namespace", "k8s backend: the namespace bottles run in (default: default).")
KUBECONFIG = BackendSetting(
    "k8s_kubeconfig", "k8s backend: the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster).")
CONTEXT = BackendSetting("k8s_context", "k8s backend: the kubeconfig context to use (default: its current one).")
CONTAINERD_ADDRESS = BackendSetting(
    "k8s_containerd_address",
    "k8s backend: a local node's containerd socket (unix:///...): images are imported there, never pulled.")
REGISTRY = BackendSetting(
    "k8s_registry", "k8s backend: a registry the cluster pulls from (host[:port]/path): images are pushed there.")
CLUSTER_RANGES = BackendSetting(
    "k8s_cluster_ranges",
    "k8s backend: the cluster's own ranges the API does not show (service CIDR...), comma-separated CIDRs.")
KUBECTL = BackendSetting("k8s_kubectl", "k8s backend: the kubectl used for attached runs (default: on PATH).")

ALL = [NAMESPACE, KUBECONFIG, CONTEXT, CONTAINERD_ADDRESS, REGISTRY, CLUSTER_RANGES, KUBECTL]

DEFAULT_NAMESPACE = "default"


def namespace() -> str:
    """The namespace bottles run in."""
    return NAMESPACE.value() or DEFAULT_NAMESPACE
