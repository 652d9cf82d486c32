"""The bundle's entry point: run the TLS-inspecting proxy on the bottle-side address.

Contract with the launch code (bottle_docker.launch relies on exactly this):

- env ``BOTTLE_PROXY_HOST``: the bottle-side IP to bind; the proxy listens there only;
- env ``BOTTLE_PROXY_PORT``: its port (default 8080);
- env ``BOTTLE_ALLOW``: comma-separated allowed hosts, each optionally ``host:port``;
  ``*.example.com`` allows every subdomain of example.com (not example.com itself);
- env ``BOTTLE_UPSTREAM_CA`` (optional): path of a PEM of extra CAs the proxy trusts for
  upstream servers, on top of the system CAs (mitmproxy's ``ssl_verify_upstream_trusted_ca``).
  The launch code copies the file to ``/etc/bottle/upstream-ca.pem`` before the container starts;
- env ``BOTTLE_SECRETS`` (optional): path of the JSON secret table (see egress_addon.py),
  copied to ``/etc/bottle/secrets.json`` the same way;
- mitmdump runs with confdir ``/var/lib/bottle/mitmproxy``. This script makes the bottle's CA
  there before mitmdump starts (an ECDSA P-256 key: generated in milliseconds, where mitmproxy's
  RSA-2048 default costs ~0.3 s of every launch). The private key never leaves the bundle;
  the certificate alone, readable by anyone, is ``/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem``;
- exactly one line ``bottle-bundle: ready`` on stdout (flushed) once the proxy accepts connections;
- a CONNECT or plain-HTTP request to a host not on the allow-list gets HTTP 403 with the body
  ``bottle: egress to <host> is not on this bottle's allow-list``;
- every egress decision is one JSON line on stdout: ``{"event": "egress", "host", "port",
  "method", "decision": "allow"|"deny", "reason", "time"}``.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def make_ca(confdir: Path) -> None:
    """A fresh CA for this bottle, in the files mitmproxy loads (key and certificate, and certificate alone)."""
    if (confdir / "mitmproxy-ca.pem").exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bottle bundle CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bottle")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    ca_file = confdir / "mitmproxy-ca.pem"
    ca_file.touch(mode=0o600)
    ca_file.write_bytes(key_pem + cert_pem)
    # Written whole, then renamed: the launch code copies it out as soon as it appears.
    staged = confdir / ".mitmproxy-ca-cert.pem"
    staged.write_bytes(cert_pem)
    staged.rename(confdir / "mitmproxy-ca-cert.pem")


def main() -> None:
    host = os.environ["BOTTLE_PROXY_HOST"]
    port = os.environ.get("BOTTLE_PROXY_PORT", "8080")
    make_ca(CONFDIR)
    argv = [
        "--quiet",
        "--listen-host", host, "--listen-port", port,
        "--set", f"confdir={CONFDIR}",
        "--set", "connection_strategy=lazy",
        "-s", str(Path(__file__).with_name("egress_addon.py")),
        *upstream_trust(os.environ.get("BOTTLE_UPSTREAM_CA")),
    ]
    sys.stdout.flush()
    from mitmproxy.tools.main import mitmdump

    sys.exit(mitmdump(argv))


if __name__ == "__main__":
    main()
