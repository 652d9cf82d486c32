"""The git gate: the bottle's remotes over git's smart-HTTP protocol, with a ref policy on every push.

Git itself does the protocol work: each request runs ``git http-backend``
(git's own CGI program) against a bare repository per remote under
:data:`ROOT`; this module is only the HTTP server around it (Python's
``http.server``), plus the upstream bookkeeping:

* before an ``upload-pack`` advertisement (fetch, clone) the gate repository's
  branches and tags are brought up to date from the upstream, so the agent
  sees the upstream as it is;
* every push goes through the ``pre-receive`` hook (``git_gate_hook.py``),
  which applies the policy and forwards the accepted refs to the upstream
  synchronously: the gate accepts only what the upstream accepted;
* git refuses malformed objects (``receive.fsckObjects``) and packs far over
  the size limit (``receive.maxInputSize``) before the hook runs.

A path upstream (a repository on the host, mounted at
``<git_upstreams>/<remote>``) lends its objects to the gate repository
(``objects/info/alternates``), so nothing is copied at start. An https
upstream is reached through the bundle's own proxy, with the token from the
bundle's token file; the agent never holds it.

Each push decision is one JSON line on stdout with ``"log": "git"``.

The agent never reads the upstream's own words: a forge's error text can
quote the request that caused it, credentials included. When the upstream
cannot be read, or refuses a push, the agent is told so in the gate's words
(and git's own verdict on a rejected ref, such as ``non-fast-forward``);
the upstream's text goes to the bottle's git log, with the gate's credential
for that upstream replaced in every form (:func:`scrubber`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import readiness
from .error_pages import FixedErrors
from .held_connections import HeldConnectionsServer

ROOT = Path(os.environ.get("BOTTLE_GATE_ROOT", "/tmp/bottle-git"))
CA_CERT = "/var/lib/bottle/mitmproxy/mitmproxy-ca-cert.pem"
SMART = re.compile(r"/([a-z0-9][a-z0-9_-]{0,39})\.git/(info/refs|git-upload-pack|git-receive-pack)")
SERVICES = ("git-upload-pack", "git-receive-pack")
ZERO = "0" * 40
COPY_CHUNK = 256 * 1024

_print_lock = threading.Lock()


def load_config() -> dict:
    with open(os.environ["BOTTLE_BUNDLE_CONFIG"], encoding="utf-8") as handle:
        return json.load(handle)


def emit(record: dict) -> None:
    """One push decision as a JSON line on stdout: the host files it in the bottle's git log."""
    with _print_lock:
        sys.stdout.write(json.dumps({"log": "git", **record}) + "\n")
        sys.stdout.flush()


def repository(name: str) -> Path:
    return ROOT / f"{name}.git"


def max_input(remote: dict) -> int:
    """git's own hard stop on a pack: well over the policy's limit, which the hook checks and names."""
    return 4 * int(remote["max_bytes"]) + 16 * 1024 * 1024


def upstream_url(config: dict, name: str) -> str:
    remote = config["git_gate"]["remotes"][name]
    return f"{config['git_upstreams']}/{name}" if remote["kind"] == "path" else remote["url"]


def upstream_env(config: dict, name: str) -> dict[str, str]:
    """The environment of a git command that talks to the upstream: proxy, trust and credential for https."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_CONFIG")}
    settings: list[tuple[str, str]] = [("core.hooksPath", "/dev/null")]
    if config["git_gate"]["remotes"][name]["kind"] == "https":
        proxy = config["proxy"]
        settings += [("http.proxy", f"http://{proxy['listen_host']}:{proxy['port']}"),
                     ("http.sslCAInfo", CA_CERT), ("http.followRedirects", "false")]
        token = _tokens(config).get(name)
        if token:
            basic = base64.b64encode(f"{token['user']}:{token['token']}".encode()).decode()
            settings.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def scrubber(config: dict, name: str):
    """A function that takes the gate's credential for ``name`` (as sent, and every form of it) out of a text."""
    from .response_inspection import Scrubber  # the proxy's, so the forms it knows are the same

    token = _tokens(config).get(name)
    values = [token["token"], f"{token['user']}:{token['token']}"] if token else []
    scrub = Scrubber([{"name": "gate-token", "value": value, "placeholder": "[gate credential]"} for value in values])
    return lambda text: scrub.scrub(text.encode("utf-8", "surrogateescape"))[0].decode("utf-8", "replace")


def upstream_failure(config: dict, name: str, stage: str, text: str, refs: list | None = None) -> None:
    """Log what the upstream said, credential removed and cut short: for the user, never for the agent."""
    emit({"time": time.time(), "remote": name, "refs": refs or [], "decision": "failed", "rule": "upstream",
          "stage": stage, "reason": scrubber(config, name)(text.strip())[-1000:]})


def _tokens(config: dict) -> dict:
    try:
        with open(config["git_tokens"], encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError, KeyError):
        return {}


# -- the gate's repositories ------------------------------------------------------------


def hooks_folder() -> Path:
    """The gate's hooks: ``pre-receive`` runs the policy (``git_gate_hook.py``)."""
    folder = ROOT / "hooks"
    folder.mkdir(exist_ok=True)
    hook = folder / "pre-receive"
    # git runs hooks with an environment of its own making: say where this package is, not only which.
    root = Path(__file__).resolve().parents[len(__package__.split("."))]
    hook.write_text(f"#!/bin/sh\nPYTHONPATH={root} exec {sys.executable or 'python3'} -m {__package__}.git_gate_hook\n")
    hook.chmod(0o755)
    return folder


def init_repository(config: dict, name: str, hooks: Path) -> None:
    """A bare repository for ``name`` whose pushes run the gate's hook and whose objects are checked."""
    remote = config["git_gate"]["remotes"][name]
    path = repository(name)
    subprocess.run(["git", "init", "--bare", "--quiet", str(path)], check=True)
    with open(path / "config", "a", encoding="utf-8") as handle:
        handle.write(
            "[http]\n\treceivepack = true\n"
            f"[core]\n\thooksPath = {hooks}\n"
            f"[receive]\n\tfsckObjects = true\n\tmaxInputSize = {max_input(remote)}\n"
            "[gc]\n\tauto = 0\n"
        )
    if remote["kind"] == "path":
        # The upstream's objects serve the gate as its own: nothing copied, fetching only moves refs.
        (path / "objects" / "info" / "alternates").write_text(f"{upstream_url(config, name)}/objects\n")


class Upstreams:
    """Brings each gate repository's branches and tags up to date from its upstream, one refresh at a time."""

    def __init__(self, config: dict):
        self.config = config
        self.locks = {name: threading.Lock() for name in config["git_gate"]["remotes"]}
        self.refreshed: set[str] = set()

    def refresh(self, name: str) -> str | None:
        """Fetch the upstream's refs into the gate; the error text when the upstream could not be read."""
        with self.locks[name]:
            env = upstream_env(self.config, name)
            url = upstream_url(self.config, name)
            repo = str(repository(name))
            out = subprocess.run(["git", "-C", repo, "fetch", "--prune", "--no-tags", "--quiet", url,
                                  "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                                 env=env, capture_output=True, text=True)
            if out.returncode != 0:
                return out.stderr.strip() or f"git fetch exited with {out.returncode}"
            head = upstream_head(url, env)
            if head:
                subprocess.run(["git", "-C", repo, "symbolic-ref", "HEAD", head], capture_output=True)
            self.refreshed.add(name)
            return None


def upstream_head(url: str, env: dict) -> str | None:
    """The branch the upstream's HEAD names (so a clone checks out the same one)."""
    out = subprocess.run(["git", "ls-remote", "--symref", url, "HEAD"], env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[5:].split("\t")[0]
    return None


# -- HTTP ---------------------------------------------------------------------------------


def pushed_commands(head: bytes) -> list[dict]:
    """The ref updates at the start of a receive-pack request (pkt-lines ``old new ref``), for the log."""
    commands, at = [], 0
    while at + 4 <= len(head):
        try:
            size = int(head[at:at + 4], 16)
        except ValueError:
            break
        if size == 0 or at + size > len(head):
            break
        line = head[at + 4:at + size].split(b"\0")[0].decode("utf-8", "replace").strip()
        parts = line.split(" ")
        if len(parts) == 3:
            commands.append({"ref": parts[2], "old": parts[0], "new": parts[1]})
        at += size
    return commands


class Handler(FixedErrors):
    """Smart-HTTP only: ``info/refs`` and the two service endpoints of a known remote; everything else 404.

    A request ``http.server`` cannot take gets a fixed page quoting nothing of it (``FixedErrors``), and
    the gate's own refusals name the remotes, never the path asked for.
    """

    protocol_version = "HTTP/1.0"
    server_version = "bottle-git-gate"
    config: dict = {}
    upstreams: Upstreams

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # push decisions are logged as JSON records instead

    def do_GET(self) -> None:
        self.serve()

    def do_POST(self) -> None:
        self.serve()

    def refuse(self, code: int, text: str) -> None:
        data = f"bottle-gate: {text}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def serve(self) -> None:
        url = urlsplit(self.path)
        match = SMART.fullmatch(url.path)
        remotes = self.config["git_gate"]["remotes"]
        if not match or match[1] not in remotes:
            return self.refuse(404, f"no such repository (remotes: {', '.join(sorted(remotes))})")
        name, endpoint = match[1], match[2]
        service = parse_qs(url.query).get("service", [""])[0] if endpoint == "info/refs" else endpoint
        if service not in SERVICES or self.command != ("GET" if endpoint == "info/refs" else "POST"):
            return self.refuse(403, "only git's smart HTTP protocol is served here")
        if service == "git-upload-pack" and endpoint == "info/refs" or name not in self.upstreams.refreshed:
            error = self.upstreams.refresh(name)
            if error is not None:
                upstream_failure(self.config, name, "fetch", error)
                return self.refuse(502, f"the upstream of {name} could not be read; the reason is in the bottle's "
                                        "git log (bottle logs --git)")
        self.run_backend(name, service, endpoint, url.query)

    def run_backend(self, name: str, service: str, endpoint: str, query: str) -> None:
        remote = self.config["git_gate"]["remotes"][name]
        records = tempfile.NamedTemporaryFile(prefix="push-", suffix=".jsonl", dir=ROOT, delete=False)
        records.close()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT), "GIT_CONFIG_NOSYSTEM": "1",
            "BOTTLE_BUNDLE_CONFIG": os.environ["BOTTLE_BUNDLE_CONFIG"],
            "BOTTLE_GATE_REMOTE": name, "BOTTLE_GATE_RECORDS": records.name,
            "GIT_PROJECT_ROOT": str(ROOT), "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": str(max_input(remote)),
            "REQUEST_METHOD": self.command, "PATH_INFO": f"/{name}.git/{endpoint}", "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0], "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = None if chunked else int(self.headers.get("Content-Length") or 0)
        if length is not None:
            env["CONTENT_LENGTH"] = str(length)
        proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        head = bytearray()
        feeder = threading.Thread(target=self.feed, args=(proc, length, head, max_input(remote)), daemon=True)
        feeder.start()
        tail = self.relay(proc)
        feeder.join()
        proc.wait()
        if service == "git-receive-pack" and endpoint == "git-receive-pack":
            self.report(name, records.name, bytes(head), tail)
        os.unlink(records.name)

    def feed(self, proc: subprocess.Popen, length: int | None, head: bytearray, limit: int) -> None:
        """The request body into the CGI's stdin (chunked bodies decoded), at most ``limit`` bytes."""
        sent = 0
        try:
            for chunk in self.body(length):
                if len(head) < 65536:
                    head.extend(chunk[:65536 - len(head)])
                sent += len(chunk)
                if sent > limit:
                    break
                proc.stdin.write(chunk)  # type: ignore[union-attr]
        except (OSError, ValueError):
            pass  # the client went away, or git stopped reading: its answer says why
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def body(self, length: int | None):
        if length is not None:
            while length > 0:
                chunk = self.rfile.read(min(COPY_CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk
            return
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return
            remaining = size
            while remaining:
                chunk = self.rfile.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
            self.rfile.readline()

    def relay(self, proc: subprocess.Popen) -> bytes:
        """The CGI's answer to the client; returns the answer's last bytes (where receive-pack reports)."""
        status, headers = 200, []
        for raw in iter(proc.stdout.readline, b""):  # type: ignore[union-attr]
            line = raw.decode("latin-1").rstrip("\r\n")
            if not line:
                break
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        tail = b""
        for chunk in iter(lambda: proc.stdout.read1(COPY_CHUNK), b""):  # type: ignore[union-attr]
            tail = (tail + chunk)[-65536:]
            try:
                self.wfile.write(chunk)
            except OSError:
                break
        return tail

    def report(self, name: str, records_path: str, head: bytes, tail: bytes) -> None:
        """Print the hook's decision records; a push git refused before the hook ran gets one too."""
        with open(records_path, encoding="utf-8") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
        for line in lines:
            emit(json.loads(line))
        failure = re.search(rb"unpack (?!ok)([^\n\x00]*)", tail)
        if lines or failure is None:
            return
        rule = ("receive.fsckObjects" if b"fsck" in tail else "push.max_size" if b"exceeds maximum" in tail
                else "unpack")
        emit({"time": time.time(), "remote": name, "refs": pushed_commands(head), "decision": "refused",
              "rule": rule, "reason": failure.group(1).decode("utf-8", "replace").strip()})


def main() -> None:
    config = load_config()
    gate = config["git_gate"]
    ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["HOME"] = str(ROOT)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    hooks = hooks_folder()
    for name in gate["remotes"]:
        init_repository(config, name, hooks)
    Handler.config = config
    Handler.upstreams = Upstreams(config)
    # Idle connections cost no thread, and a bounded pool serves requests: a flood cannot use up the pids.
    # On the socket the entry point listened on since the bundle started (it starts the gate on first use).
    server = readiness.server(HeldConnectionsServer, (config["proxy"]["listen_host"], int(gate["port"])), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
