"""The bundle's entry point: run the TLS-inspecting proxy on the bottle-side address.

Contract with the launch code (bottle_docker.launch):

- env ``BOTTLE_PROXY_HOST``: the bottle-side IP to bind (the proxy listens there only);
- env ``BOTTLE_PROXY_PORT``: its port (default 8080);
- env ``BOTTLE_ALLOW``: comma-separated allowed hosts; ``*.example.com`` allows subdomains;
- env ``BOTTLE_UPSTREAM_CA`` (optional): a PEM of extra CAs trusted for upstream servers,
  copied into the container before it starts;
- mitmproxy's confdir is ``/var/lib/bottle/mitmproxy``: it makes a CA there on first start,
  whose private key never leaves the bundle; the certificate alone is
  ``mitmproxy-ca-cert.pem``, which the launch code copies into the agent;
- one line ``bottle-bundle: ready`` on stdout once the proxy accepts connections;
- every egress decision is one JSON line on stdout (see egress_addon.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFDIR = Path("/var/lib/bottle/mitmproxy")
SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def upstream_trust(extra: str | None) -> list[str]:
    """mitmproxy options so upstream certificates verify against the system CAs plus ``extra``."""
    if not extra:
        return []
    combined = CONFDIR / "upstream-trust.pem"
    parts = [SYSTEM_CAS.read_text() if SYSTEM_CAS.exists() else "", Path(extra).read_text()]
    combined.write_text("\n".join(parts))
    return ["--set", f"ssl_verify_upstream_trusted_ca={combined}"]


def main() -> None:
    host = os.environ["BOTTLE_PROXY_HOST"]
    port = os.environ.get("BOTTLE_PROXY_PORT", "8080")
    argv = [
        "mitmdump", "--quiet",
        "--listen-host", host, "--listen-port", port,
        "--set", f"confdir={CONFDIR}",
        "--set", "connection_strategy=lazy",
        "-s", str(Path(__file__).with_name("egress_addon.py")),
        *upstream_trust(os.environ.get("BOTTLE_UPSTREAM_CA")),
    ]
    sys.stdout.flush()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
