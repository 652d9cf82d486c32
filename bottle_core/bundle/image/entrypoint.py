"""The bundle's entry point: start every daemon, say when all accept, stop if one dies.

The daemons read their settings from the JSON file named by
``BOTTLE_BUNDLE_CONFIG`` (written by ``bottle_core.bundle.contract``): the
TLS-inspecting proxy (mitmdump with ``proxy_addon.py``) on the bottle-side
address, and the egress stage (squid, ``egress_stage.py``) on loopback, the
only process that connects out. Each daemon is a child process; they start in
parallel, ``bottle-bundle: ready`` is printed once on stdout when every one
accepts connections, and when any of them exits the others are stopped and
the bundle exits non-zero, so the bottle fails visibly instead of limping on.

Each stage runs as its own user, so the packet filter (``netfilter.py``) can
let only the egress stage's user connect out. The bundle starts as root
holding only SETUID and SETGID: it starts the egress stage as ``egress``,
then drops to ``bundle`` for good (no capability is left to any process)
before it makes the CA and starts the proxy.

The CA is made here before the proxy starts (an ECDSA P-256 key: generated in
milliseconds, where mitmproxy's RSA-2048 default costs ~0.3 s of every
launch). The private key never leaves the bundle; the certificate alone,
readable by anyone, is ``/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem``.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import egress_stage  # noqa: E402

CONFDIR = Path("/var/lib/bottle/mitmproxy")
EGRESS_DIR = Path("/run/bottle/egress")
PROXY_USER, EGRESS_USER = "bundle", "egress"
SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


UPSTREAM_TRUST = CONFDIR / "upstream-trust.pem"


def upstream_trust(extra: str | None) -> list[str]:
    """mitmproxy options so upstream certificates verify against the system CAs plus ``extra``."""
    return ["--set", f"ssl_verify_upstream_trusted_ca={UPSTREAM_TRUST}"] if extra else []


def write_upstream_trust(extra: str | None) -> None:
    """The file :func:`upstream_trust` names: the system CAs plus ``extra``."""
    if extra:
        parts = [SYSTEM_CAS.read_text() if SYSTEM_CAS.exists() else "", Path(extra).read_text()]
        UPSTREAM_TRUST.write_text("\n".join(parts))


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


READY_LINE = "bottle-bundle: ready"
READY_TIMEOUT = 30.0


@dataclass
class Daemon:
    """One child process of the bundle and the address where it accepts connections once up."""

    name: str
    argv: list[str]
    address: tuple[str, int]
    user: str = PROXY_USER
    process: subprocess.Popen | None = None


def daemons(config: dict) -> list[Daemon]:
    """The daemons this bundle runs, from its configuration (the egress stage first: it starts as root)."""
    proxy, egress = config["proxy"], config["egress"]
    here = Path(__file__).resolve().parent
    mitmdump = [
        shutil.which("mitmdump") or "mitmdump", "--quiet",
        "--listen-host", proxy["listen_host"], "--listen-port", str(proxy["port"]),
        # Every server connection goes through the egress stage: the proxy never resolves or connects out.
        "--mode", f"upstream:http://127.0.0.1:{int(egress['port'])}",
        "--set", f"confdir={CONFDIR}",
        "--set", "connection_strategy=lazy",
        "-s", str(here / "proxy_addon.py"),
        "-s", str(here / "egress_preflight.py"),
        "-s", str(here / "response_stream.py"),
        *upstream_trust(config.get("upstream_ca")),
    ]
    return [
        Daemon("egress", egress_stage.argv(EGRESS_DIR / "squid.conf"), ("127.0.0.1", int(egress["port"])),
               user=EGRESS_USER),
        Daemon("proxy", mitmdump, (proxy["listen_host"], int(proxy["port"]))),
    ]


def prepare_egress_stage(config: dict) -> None:
    """The egress stage's configuration, written as root where its user can read but not change it."""
    egress_stage.write_error_pages(EGRESS_DIR / "errors")
    (EGRESS_DIR / "squid.conf").write_text(egress_stage.squid_config(config["egress"], EGRESS_DIR / "errors"))


def start(daemon: Daemon) -> None:
    """Start ``daemon`` as its user (from root: a user switch; as that user already: a plain start)."""
    if os.getuid() == 0:
        account = pwd.getpwnam(daemon.user)
        daemon.process = subprocess.Popen(daemon.argv, user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                                          cwd="/", env={**os.environ, "HOME": account.pw_dir})
    else:
        daemon.process = subprocess.Popen(daemon.argv)


def drop_to(user: str) -> None:
    """Become ``user`` for good: from here on, no process of the bundle holds a capability."""
    account = pwd.getpwnam(user)
    os.setgroups([])
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    os.environ["HOME"] = account.pw_dir


def accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def announce_ready(running: list[Daemon]) -> None:
    """Print the ready line once every daemon accepts; never claim readiness that was not seen."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = list(running)
    while waiting and time.monotonic() < deadline:
        waiting = [d for d in waiting if not accepts(d.address)]
        if waiting:
            time.sleep(0.02)
    if waiting:
        names = ", ".join(f"{d.name} on {d.address[0]}:{d.address[1]}" for d in waiting)
        print(f"bottle-bundle: never accepted a connection: {names}", file=sys.stderr, flush=True)
        return
    print(READY_LINE, flush=True)


def stop_all(running: list[Daemon]) -> None:
    """Stop the daemons this process may still signal (one of another user ends with the bundle's namespace)."""
    stoppable = []
    for daemon in running:
        if daemon.process and daemon.process.poll() is None:
            try:
                daemon.process.terminate()
            except PermissionError:
                continue
            stoppable.append(daemon)
    for daemon in stoppable:
        if daemon.process:
            try:
                daemon.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                daemon.process.kill()


def main() -> None:
    config = json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))
    if os.getuid() != 0:
        sys.exit("bottle-bundle: start the bundle as root with only SETUID and SETGID: it runs each stage as "
                 "its own user and drops to the proxy's user itself")
    running = daemons(config)
    prepare_egress_stage(config)
    for daemon in running:
        if daemon.user != PROXY_USER:
            start(daemon)
    drop_to(PROXY_USER)
    make_ca(CONFDIR)
    write_upstream_trust(config.get("upstream_ca"))
    for daemon in running:
        if daemon.user == PROXY_USER:
            start(daemon)
    signal.signal(signal.SIGTERM, lambda *_: (stop_all(running), sys.exit(0)))
    threading.Thread(target=announce_ready, args=(running,), daemon=True).start()
    pid, status = os.wait()  # the first daemon to end ends the bundle
    name = next((d.name for d in running if d.process and d.process.pid == pid), f"pid {pid}")
    print(f"bottle-bundle: {name} exited ({os.waitstatus_to_exitcode(status)}); stopping", file=sys.stderr, flush=True)
    stop_all(running)
    sys.exit(1)


if __name__ == "__main__":
    main()
