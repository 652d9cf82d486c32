"""The agent sandbox: its image and its environment, the same for every backend."""

from __future__ import annotations

from pathlib import Path

from ..claude_state import claude_environment
from ..plan import Plan



def image_context() -> Path:
    """The agent image's build context folder (shipped as package data of bottle-core)."""
    return Path(__file__).resolve().parent / "image"


def environment(plan: Plan) -> dict[str, str]:
    """The agent's environment: the proxy, the bundle's CA for every TLS stack, placeholders, the manifest's env.

    Computed once from the Plan so every backend gives the agent exactly this.
    """
    proxy = plan.proxy.url
    ca_bundle = plan.guest.ca_bundle
    # Its own loopback, and the bundle's other daemons (git gate, supervisor), are reached without the proxy.
    direct = f"localhost,127.0.0.1,{plan.network.bundle_ip}"
    env = {
        "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
        "NO_PROXY": direct, "no_proxy": direct,
        "NODE_EXTRA_CA_CERTS": plan.guest.ca_cert,
        "SSL_CERT_FILE": ca_bundle, "REQUESTS_CA_BUNDLE": ca_bundle, "PIP_CERT": ca_bundle,
        "GIT_SSL_CAINFO": ca_bundle, "CURL_CA_BUNDLE": ca_bundle,
        "HOME": plan.guest.home,
    }
    env.update(claude_environment())
    env.update({secret.name: secret.placeholder for secret in plan.secrets})
    env.update(plan.env)
    return env
