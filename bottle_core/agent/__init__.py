"""The agent sandbox: its image and its environment, the same for every backend."""

from __future__ import annotations

from pathlib import Path

from ..claude_state import claude_environment
from ..plan import Plan



def image_context() -> Path:
    """The agent image's build context folder (shipped as package data of bottle-core)."""
    return Path(__file__).resolve().parent / "image"


#: Where bottle's own commands as root find their programs, whatever the manifest's env says.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT = ("0", "root")


def environment(plan: Plan) -> dict[str, str]:
    """The agent's environment: the proxy, the bundle's CA for every TLS stack, placeholders, the manifest's env.

    Computed once from the Plan so every backend gives the agent exactly this.
    """
    return {**_own_environment(plan), **plan.env}


def root_environment(plan: Plan) -> dict[str, str]:
    """What bottle's own commands as root in the sandbox run with, over the sandbox's environment.

    A backend whose root commands share the agent's environment (a container's, where the manifest's
    ``env`` is) gives them this: the manifest's env is written by a repository's author, and as root's a
    ``PATH`` or ``LD_PRELOAD`` into a folder the manifest fills (its skills, the workspace) would run the
    author's programs as root. Each name it sets gets bottle's own value back, or is emptied (the
    dynamic loader and shells read an empty variable as unset); ``PATH`` is the system's.
    """
    own = _own_environment(plan)
    return {**{name: own.get(name, "") for name in plan.env}, "PATH": SYSTEM_PATH}


def _own_environment(plan: Plan) -> dict[str, str]:
    """The agent's environment without the manifest's env."""
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
    return env
