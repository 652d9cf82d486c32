"""The cluster: where its configuration comes from, the API clients, and whether it answers.

Configuration, in order: ``BOTTLE_K8S_KUBECONFIG``, ``$KUBECONFIG``,
``~/.kube/config``, else the in-cluster service account (bottle itself
running in a pod). ``BOTTLE_K8S_CONTEXT`` picks a context.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from bottle_core.errors import BottleRuntimeError

from . import settings


def kubeconfig_path() -> str | None:
    """The kubeconfig file to read, or None for the in-cluster configuration."""
    explicit = settings.KUBECONFIG.value() or os.environ.get("KUBECONFIG")
    if explicit:
        return explicit.split(os.pathsep)[0]
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


@functools.lru_cache(maxsize=1)
def api_client():
    """A configured ``kubernetes.client.ApiClient`` (one per process)."""
    from kubernetes import client, config

    path = kubeconfig_path()
    configuration = client.Configuration()
    try:
        if path is not None:
            if not Path(path).is_file():
                raise BottleRuntimeError(f"kubeconfig {path} does not exist",
                                         hint=f"set {settings.KUBECONFIG.variable} or KUBECONFIG to a cluster's")
            config.load_kube_config(config_file=path, context=settings.CONTEXT.value(),
                                    client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as exc:
        raise BottleRuntimeError(f"no Kubernetes cluster configured: {exc}",
                                 hint=f"set KUBECONFIG (or {settings.KUBECONFIG.variable}) to a cluster's kubeconfig")
    return client.ApiClient(configuration)


def core():
    """The core/v1 API."""
    from kubernetes import client

    return client.CoreV1Api(api_client())


def networking():
    """The networking.k8s.io/v1 API."""
    from kubernetes import client

    return client.NetworkingV1Api(api_client())


def api_host() -> str:
    """The API server's URL as this process reaches it."""
    return api_client().configuration.host


def availability() -> str | None:
    """None when the cluster answers and lets this user create pods in the namespace; else why not."""
    if kubeconfig_path() is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        # Nothing to ask: said without importing the client (about 0.3 s), so listing backends stays quick.
        return (f"no Kubernetes cluster configured: set KUBECONFIG (or {settings.KUBECONFIG.variable}) "
                "to a cluster's kubeconfig")
    try:
        from kubernetes.client.rest import ApiException
    except ImportError:
        return "the kubernetes Python package is missing: pip install kubernetes"
    try:
        api = core()
        api.list_namespaced_pod(settings.namespace(), limit=1, _request_timeout=5)
    except BottleRuntimeError as exc:
        return exc.render()
    except ApiException as exc:
        return f"the cluster refused to list pods in namespace {settings.namespace()}: {exc.status} {exc.reason}"
    except Exception as exc:  # noqa: BLE001 - connection refused, TLS, DNS: one line for the user
        return f"no Kubernetes API server answers at {_host_or_unknown()}: {type(exc).__name__}: {exc}"
    return None


def _host_or_unknown() -> str:
    try:
        return api_host()
    except Exception:  # noqa: BLE001
        return "(unknown)"
