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
BUNDLE_HOSTS = BackendSetting(
    "k8s_bundle_hosts",
    "k8s backend: names the bundle resolves to fixed addresses (name=ip,...), for servers no resolver of the node knows.")
KUBECTL = BackendSetting("k8s_kubectl", "k8s backend: the kubectl used for attached runs (default: on PATH).")

ALL = [NAMESPACE, KUBECONFIG, CONTEXT, CONTAINERD_ADDRESS, REGISTRY, CLUSTER_RANGES, BUNDLE_HOSTS, KUBECTL]

DEFAULT_NAMESPACE = "default"


def namespace() -> str:
    """The namespace bottles run in."""
    return NAMESPACE.value() or DEFAULT_NAMESPACE


def bundle_hosts(value: str | None = None) -> list[dict]:
    """``BOTTLE_K8S_BUNDLE_HOSTS`` as the bundle pod's ``hostAliases`` (one entry per address)."""
    import ipaddress

    from bottle_core.errors import UsageError

    value = BUNDLE_HOSTS.value() if value is None else value
    by_ip: dict[str, list[str]] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        name, _, ip = item.strip().partition("=")
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            raise UsageError(f"{BUNDLE_HOSTS.variable}: {item.strip()!r} is not name=ip",
                             hint="write name=address pairs separated by commas, e.g. example.test=172.30.0.5") from None
        if not name.strip():
            raise UsageError(f"{BUNDLE_HOSTS.variable}: {item.strip()!r} has no name", hint="write name=address")
        by_ip.setdefault(ip.strip(), []).append(name.strip())
    return [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]
