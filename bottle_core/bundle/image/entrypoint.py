"""The bundle's entry point: start every daemon, say when all listen, stop if one dies.

The daemons read their settings from the JSON file named by
``BOTTLE_BUNDLE_CONFIG`` (written by ``bottle_core.bundle.contract``): the
TLS-inspecting proxy (mitmdump with ``proxy_addon.py``) and the git gate
(``git_gate.py``), both on the bottle-side address; the egress stage (squid,
``egress_stage.py``) on loopback, the only process that connects out; and
when asked for, the supervisor (``supervisor.py``) and the scripted model
(``model_server.py``, on loopback). Each daemon is a child process, started
as its own non-root user with no capability left (the entry point itself
keeps only what it needs for that, when it starts as root: the proxy runs as
``bundle``, the egress stage as ``egress``, the gate as the owner of the host
repositories it pushes to, so nothing on the host changes owner or mode, or
as ``gate`` when it has none).
They start in parallel, each telling the entry point on a pipe of its own when it
listens (``readiness.py``; squid, which cannot, is looked for in the kernel's
socket table), ``bottle-bundle: ready`` is printed once on stdout when every
one listens on its address, and when any of them exits the others are stopped
and the bundle exits non-zero, so the bottle fails visibly instead of limping
on. A bundle started for a warm pool starts its slow daemons ahead of the
claim, waiting for it (``pooled.py``).

The daemons: the proxy, in upstream mode: every server connection it opens
goes through the egress stage, which resolves the name and refuses private
and host addresses; the git gate; the supervisor (unless supervision is off)
judging the agent's tool calls; and, for a rehearsal with ``--model-script``,
the scripted model server on loopback, to which the proxy sends every request
for the model host (through the egress stage, which lets the proxy reach that
one loopback port and no other). Each daemon runs as its own user so that the
packet filter (``netfilter.py``, set from outside the bundle) can let only
the egress stage's user connect out.

The CA is made here before the proxy starts (an ECDSA P-256 key: generated in
milliseconds, where mitmproxy's RSA-2048 default costs ~0.3 s of every
launch). The private key never leaves the bundle; the certificate alone,
readable by anyone, is ``/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem``.
"""

from __future__ import annotations

import datetime
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import daemons as daemon_table, egress_stage, pooled, readiness
from .accounts import account, uids
from .daemons import EGRESS_DIR, POLICY_LOADED, SQUID_CONF

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
    # Imported here: the proxy alone makes the CA, and the entry point starts faster without them.
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
    staged.rename(confdir / "mitmproxy-ca-cert.pem")


READY_LINE = "bottle-bundle: ready"
#: Said first when told to stop (SIGTERM): whoever files the output may stop reading there.
STOPPED_LINE = "bottle-bundle: stopped"
TCP_LISTEN = "0A"  # a socket's state in /proc/net/tcp
#: A bound, not a budget: a bundle starts in a second or two, but many bundles starting at once on a
#: small host share its cores (sixteen at once on two cores take about a minute).
READY_TIMEOUT = 150.0
#: How often a daemon that does not say when it listens (squid) is looked for in the socket table.
LOOK = 0.02


@dataclass
class Daemon:
    """One child process of the bundle and the address where it accepts connections once up."""

    name: str
    argv: list[str]
    address: tuple[str, int]
    user: tuple[int, int] | None = None
    process: subprocess.Popen | None = None
    ready_file: Path | None = None  # when set, the daemon is ready only once this file exists too
    says_ready: bool = True  # it writes readiness.READY on its pipe once it listens
    said: bytes = b""  # what it said on its pipe so far
    pipe: int | None = None  # the read end of its readiness pipe
    go: int | None = None  # the write end of its go pipe, when started ahead of a claim

    def ready(self) -> bool:
        return listening(self.address) and (self.ready_file is None or self.ready_file.exists())

    def ended(self) -> bool:
        """Whether it exited before it was ready (no point waiting for it then)."""
        return self.process is not None and self.process.poll() is not None

    def start(self, *, ahead: bool = False) -> None:
        """Start it as its user, with its readiness pipe (and, ``ahead`` of a claim, its go pipe)."""
        env, passed = dict(os.environ), []
        if self.says_ready or ahead:  # one that cannot say (squid) gets no pipe: closing it would read as its end
            self.pipe, ready_write = os.pipe()
            env[readiness.READY_FD] = str(ready_write)
            passed.append(ready_write)
        if ahead:
            go_read, self.go = os.pipe()
            env[readiness.GO_FD] = str(go_read)
            passed.append(go_read)
        self.process = subprocess.Popen(as_user(self.argv, self.user), env=env, pass_fds=passed)
        for fd in passed:  # its copies alone: a pipe closes when the daemon ends
            os.close(fd)

    def release(self, go: bool) -> None:
        """Started ahead: let it read the run's configuration and serve (``go``), or end unread."""
        if self.go is not None:
            try:
                if go:
                    os.write(self.go, readiness.GO)
            except BrokenPipeError:
                pass  # it ended meanwhile: its exit ends the bundle, reported as any daemon's
            finally:
                os.close(self.go)
                self.go = None


def daemons(config: dict) -> list[Daemon]:
    """The daemons this bundle runs (the rows of :data:`daemons.TABLE` it enables), each as its own user."""
    rows = daemon_table.running(config)
    uids(config, rows)  # two daemons of different users never share a uid
    return [Daemon(row.name, row.argv(config), row.address(config), account(row.user(config)),
                   ready_file=row.ready_file, says_ready=row.says_ready) for row in rows]


def prepare_egress_stage(config: dict) -> None:
    """The egress stage's configuration, written as root where its user can read but not change it."""
    egress_stage.write_error_pages(EGRESS_DIR / "errors")
    SQUID_CONF.write_text(egress_stage.squid_config(config["egress"], EGRESS_DIR / "errors",
                                                                     script_port(config)))


def script_port(config: dict) -> int | None:
    """The scripted model's loopback port, when this is a rehearsal."""
    scripted = config.get("scripted_model")
    return int(scripted["port"]) if scripted else None


def run_proxy(config: dict) -> None:
    """The proxy daemon: make the CA, then become mitmdump (as the bundle user, who owns the CA's key)."""
    proxy, egress = config["proxy"], config["egress"]
    make_ca(CONFDIR)
    mitmdump = [
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
    ]
    POLICY_LOADED.unlink(missing_ok=True)
    os.execvp(mitmdump[0], mitmdump)


def as_user(argv: list[str], user: tuple[int, int] | None) -> list[str]:
    """``argv`` run as ``user`` with no capability at all (bounding set emptied), when this process is root."""
    if user is None or os.geteuid() != 0:
        return argv
    uid, gid = user
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--", *argv]


def listening(address: tuple[str, int], tables: tuple[str, ...] = ("/proc/net/tcp",)) -> bool:
    """Whether a socket listens on ``address`` (or on all addresses at its port).

    Read from the kernel's socket table rather than by connecting: the packet
    filter lets only the daemons' users reach each other, not this entry
    point (which may share its uid with the git gate's).
    """
    host, port = address
    wanted = {f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}" for ip in (host, "0.0.0.0")}
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(fields[1] in wanted and fields[3] == TCP_LISTEN for fields in map(str.split, lines)):
            return True
    return False


def announce_ready(running: list[Daemon], timeout: float = READY_TIMEOUT) -> bool:
    """Print the ready line once every daemon listens; never claim readiness that was not seen.

    A daemon that says when it listens is waited for on its pipe (and then
    checked once in the socket table); one that does not (squid) is looked
    for there every :data:`LOOK` seconds. A pipe that closes is a daemon
    ended: no point waiting then.
    """
    deadline = time.monotonic() + timeout
    waiting = list(running)
    ended = False
    while waiting and not ended and not any(d.ended() for d in waiting) and time.monotonic() < deadline:
        looked = [d for d in waiting if not d.says_ready or readiness.READY in d.said]
        waiting = [d for d in waiting if d not in looked or not d.ready()]
        if not waiting:
            break
        pipes = {d.pipe: d for d in waiting
                 if d.says_ready and d.pipe is not None and readiness.READY not in d.said}
        look_again = any(not d.says_ready or readiness.READY in d.said for d in waiting)
        pause = LOOK if look_again else max(0.0, deadline - time.monotonic())
        for fd in select.select(list(pipes), [], [], pause)[0]:
            said = os.read(fd, 64)
            pipes[fd].said += said
            ended = ended or not said
    if waiting:
        names = ", ".join(f"{d.name} on {d.address[0]}:{d.address[1]}"
                          + (f" (exited {d.process.returncode})" if d.ended() else "") for d in waiting)
        print(f"bottle-bundle: never listened: {names}", file=sys.stderr, flush=True)
        return False
    print(READY_LINE, flush=True)
    return True


def stop_all(running: list[Daemon]) -> None:
    """Stop the daemons this process may signal (one of another user ends with the bundle)."""
    for daemon in running:
        daemon.release(go=False)
        if daemon.process and daemon.process.poll() is None:
            try:
                daemon.process.terminate()
            except PermissionError:
                pass  # another user's daemon (no CAP_KILL here): it ends with the bundle
    for daemon in running:
        if daemon.process:
            try:
                daemon.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    daemon.process.kill()
                except PermissionError:
                    pass


def stop_on_term(running: list[Daemon]) -> None:
    """On SIGTERM: say :data:`STOPPED_LINE` (in one write: never inside another print), then stop."""
    def stop(*_) -> None:
        os.write(sys.stdout.fileno(), f"{STOPPED_LINE}\n".encode())
        stop_all(running)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def read_config() -> dict:
    return json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))


def start_ahead(config: dict) -> list[Daemon]:
    """A pooled bundle (see pooled.py): start the daemons marked ``ahead``, each waiting for its go; say
    ``pooled`` once all wait; return them once a run has claimed the bottle and its configuration is in place."""
    wake = pooled.listen_for_claim()
    ahead = [d for d, row in zip(daemons(config), daemon_table.running(config)) if row.ahead]
    for daemon in ahead:
        daemon.start(ahead=True)
    stop_on_term(ahead)
    watched = {d.pipe: d.name for d in ahead}
    pooled.await_waiting(watched, READY_TIMEOUT)
    pooled.wait_for_claim(wake, watched)
    return ahead


def take_over(ahead: list[Daemon], before: dict, after: dict) -> dict[str, Daemon]:
    """The daemons started ahead (from the pooled configuration ``before``) that serve the claiming run's
    (``after``) as they are: same command line and user, still run; the others end unread. A proxy that does
    not fit stops the bundle: its inputs are fixed at launch."""
    wanted = {d.name: d for d in daemons(after)}
    kept = {}
    for daemon in ahead:
        fits = daemon.name in wanted and (wanted[daemon.name].argv, wanted[daemon.name].user) == \
            (daemon.argv, daemon.user)
        if daemon.name == "proxy" and not (fits and pooled.proxy_inputs(after) == pooled.proxy_inputs(before)):
            print("bottle-bundle: the claim changed the proxy's address, ports or upstream CA; stopping",
                  file=sys.stderr, flush=True)
            stop_all(ahead)
            sys.exit(1)
        if fits:
            kept[daemon.name] = daemon
        else:
            daemon.release(go=False)
            try:  # it ends on its own, unread; reaped here so that it does not end the bundle
                daemon.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"bottle-bundle: {daemon.name}, not wanted by the claim, did not end; stopping",
                      file=sys.stderr, flush=True)
                sys.exit(1)
    return kept


def main() -> None:
    config = read_config()
    if sys.argv[1:] == ["proxy"]:
        return run_proxy(config)
    kept: dict[str, Daemon] = {}
    if pooled.is_pooled():
        ahead = start_ahead(config)
        claimed = read_config()  # the claiming run's
        kept, config = take_over(ahead, config, claimed), claimed
    running = [kept.get(d.name, d) for d in daemons(config)]
    for daemon in kept.values():  # the slow ones first: they read the run's configuration meanwhile
        daemon.release(go=True)
    prepare_egress_stage(config)
    for daemon in running:
        if daemon.process is None:
            daemon.start()
    stop_on_term(running)
    threading.Thread(target=announce_ready, args=(running,), daemon=True).start()
    pid, status = os.wait()  # the first daemon to end ends the bundle
    name = next((d.name for d in running if d.process and d.process.pid == pid), f"pid {pid}")
    print(f"bottle-bundle: {name} exited ({os.waitstatus_to_exitcode(status)}); stopping", file=sys.stderr, flush=True)
    stop_all(running)
    sys.exit(1)


if __name__ == "__main__":
    main()
