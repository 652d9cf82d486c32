"""The proxy daemon's process: the bottle's CA first thing, then mitmdump in its place.

The agent's provisioning waits for the CA certificate, so it is made before
anything else is imported (``cryptography`` alone): an ECDSA P-256 key,
generated in milliseconds where mitmproxy's RSA-2048 default costs ~0.3 s.
It runs as the proxy's user, who owns the key; the private key never leaves
the bundle, and the certificate alone, readable by anyone, is
:data:`CA_CERT`. Once it is written the process tells the entry point
(``readiness.READY``): the proxy's address listens already (the entry
point's socket, handed over), so that is all the bundle's readiness waits
for. Then the process becomes mitmdump (``os.execvp``) with the bundle's
addons, in upstream mode through the egress stage; given the entry point's
socket, mitmdump opens no listener of its own and its last addon serves that
socket (``proxy_serve.py``).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

CONFDIR = Path("/var/lib/bottle/mitmproxy")
#: The CA's certificate alone, which the launch copies into the agent (the key stays beside it, the user's alone).
CA_CERT = CONFDIR / "mitmproxy-ca-cert.pem"
SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def make_ca(confdir: Path) -> None:
    """A fresh CA for this bottle, in the files mitmproxy loads (key and certificate, and certificate alone)."""
    if (confdir / "mitmproxy-ca.pem").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
    staged.rename(confdir / CA_CERT.name)


def upstream_trust(extra: str | None) -> list[str]:
    """mitmproxy options so upstream certificates verify against the system CAs plus ``extra``."""
    if not extra:
        return []
    combined = CONFDIR / "upstream-trust.pem"
    parts = [SYSTEM_CAS.read_text() if SYSTEM_CAS.exists() else "", Path(extra).read_text()]
    combined.write_text("\n".join(parts))
    return ["--set", f"ssl_verify_upstream_trusted_ca={combined}"]


def mitmdump_argv(config: dict, handed: bool = False) -> list[str]:
    """mitmdump's command line for the bundle's configuration; ``handed``: serving the entry point's socket."""
    import shutil

    from .daemons import POLICY_LOADED

    proxy, egress = config["proxy"], config["egress"]
    return [
        shutil.which("mitmdump") or "mitmdump", "--quiet",
        "--listen-host", proxy["listen_host"], "--listen-port", str(proxy["port"]),
        # Every server connection goes through the egress stage: the proxy never resolves or connects out.
        "--mode", f"upstream:http://127.0.0.1:{int(egress['port'])}",
        "--set", f"confdir={CONFDIR}",
        # Nothing is connected (or resolved) before the request that needs it was judged allowed.
        "--set", "connection_strategy=lazy", "--set", "upstream_cert=false",
        "--set", "onboarding=false",  # no mitm.it answered inside the bundle
        # The policy first; then the egress stage's preflight, which asks only about what the policy allowed.
        "-s", str(Path(__file__).resolve().with_name("mitm_addons.py")),
        "--set", f"bottle_policy_loaded={POLICY_LOADED}",
        *upstream_trust(config.get("upstream_ca")),
        # Its address is the entry point's socket, served by the last addon (proxy_serve), not bound again.
        *(["--set", "server=false"] if handed else []),
    ]


def main() -> None:
    make_ca(CONFDIR)  # before any other import: the launch is waiting for it
    from . import readiness

    readiness.tell(readiness.READY)  # the CA written; its address listens already (the entry point's socket)
    import json

    from .daemons import POLICY_LOADED

    config = json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))
    argv = mitmdump_argv(config, handed=readiness.LISTEN_FD in os.environ)
    POLICY_LOADED.unlink(missing_ok=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
