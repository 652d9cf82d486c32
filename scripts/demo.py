"""The bottle demo: a real ``claude`` in a real bottle, talking to a scripted model, offline.

What it does, step by step (each step is printed):

1. Builds the scripted model server's image (``tests/servers``) if it is missing.
2. Makes a throwaway CA and a certificate for ``api.anthropic.com``.
3. Creates an internal docker network standing in for the internet, and starts
   the model server on it as ``api.anthropic.com`` with two scripted replies: a
   Bash tool call that writes a file in ``/workspace``, then a closing text.
4. Runs ``bottle run -m <manifest> demo -- -p ...`` with the bundle put on
   that network, and shows claude's answer.
5. Shows what the model server received: the agent's prompt in the system
   prompt, and the tool's output coming back from inside the bottle.

Everything it creates (network, container, temporary files) is removed at the
end, also after an error, Ctrl-C or SIGTERM. Exit status 0 means every check
passed.

Usage: ``python scripts/demo.py`` (the ``bottle`` command is taken from the
same virtualenv as this Python).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test-server image recipe is shared with the tests
from tests.servers import image  # noqa: E402
BOTTLE = str(Path(sys.executable).with_name("bottle"))

MODEL_HOST = "api.anthropic.com"
AGENT_PROMPT = "You are demo. Be brief."
USER_PROMPT = "Say hello from inside the bottle"
TOOL_COMMAND = 'echo "hello from inside the bottle: $(id -un)" > /workspace/hello.txt && cat /workspace/hello.txt'
TOOL_MARKER = "hello from inside the bottle:"
FINAL_TEXT = "Done: I wrote /workspace/hello.txt inside the bottle and read it back."

MANIFEST = f"""\
# The demo's manifest: one bottle, one agent.
[bottles.dev]

[agents.demo]
bottle = "dev"
prompt = "{AGENT_PROMPT}"
skills = []
"""

#: Labels on every engine resource the demo creates, so a crashed run's leftovers can be found.
DEMO_LABEL = "bottle.demo"
READY_TIMEOUT = 30.0
RUN_TIMEOUT = 300.0
BUILD_TIMEOUT = 600
INTERRUPT_GRACE = 30.0
#: The docker backend's label holding the pid of the ``bottle`` process that made a resource.
BOTTLE_PID_LABEL = "bottle.pid"


class DemoFailed(Exception):
    """A step of the demo did not do what it should; the message says which."""


def step(number: int, text: str) -> None:
    print(f"\n[{number}/5] {text}", flush=True)


def detail(text: str) -> None:
    print(f"      {text}", flush=True)


def shown(lines: str, prefix: str = "      | ") -> None:
    for line in lines.rstrip("\n").splitlines() or [""]:
        print(prefix + line, flush=True)


# --- the model server's image ------------------------------------------------


def ensure_server_image(client) -> str:
    try:
        tag, built = image.ensure_server_image(client, timeout=BUILD_TIMEOUT)
    except image.ImageBuildFailed as exc:
        raise DemoFailed(str(exc)) from None
    detail(f"built {tag}" if built else f"{tag} is already built")
    return tag


# --- the demo's resources ----------------------------------------------------


class Demo:
    """The demo's temporary folder, network and model server, all removed by ``close``."""

    def __init__(self, client):
        self.client = client
        self.token = secrets.token_hex(4)
        self.labels = {DEMO_LABEL: "1", f"{DEMO_LABEL}.pid": str(os.getpid())}
        self.tmp = Path(tempfile.mkdtemp(prefix="bottle-demo-"))
        self.srv = self.tmp / "srv"  # mounted into the model server
        self.workspace = self.tmp / "workspace"  # the directory bottle run copies into /workspace
        self.network = None
        self.server = None
        self.bottle_pid: int | None = None  # of the `bottle run` child, once started

    # set-up

    def make_certificates(self) -> Path:
        """A throwaway CA; a certificate for the model host signed by it. Returns the CA's PEM path."""
        import trustme

        self.srv.mkdir()
        self.srv.chmod(0o777)  # the server rewrites its script file here, whatever uid it runs as
        ca = trustme.CA()
        ca_pem = self.tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_pem))
        cert = ca.issue_cert(MODEL_HOST)
        with open(self.srv / "server.crt", "wb") as handle:
            for blob in cert.cert_chain_pems:
                handle.write(blob.bytes())
        cert.private_key_pem.write_to_path(str(self.srv / "server.key"))
        for path in (ca_pem, self.srv / "server.crt", self.srv / "server.key"):
            path.chmod(0o644)
        return ca_pem

    def create_network(self) -> str:
        # internal: no route off the machine for anything on it.
        name = f"bottle-demo-net-{self.token}"
        self.network = self.client.networks.create(name, driver="bridge", internal=True, labels=self.labels,
                                                   check_duplicate=True)
        return name

    def start_model_server(self, image: str, script: list) -> None:
        (self.srv / "script.json").write_text(json.dumps(script), encoding="utf-8")
        (self.srv / "requests.jsonl").write_text("", encoding="utf-8")
        for name in ("script.json", "requests.jsonl"):
            (self.srv / name).chmod(0o666)
        api = self.client.api
        networking = api.create_networking_config(
            {self.network.name: api.create_endpoint_config(aliases=[MODEL_HOST])})
        # Its resolver points at its own loopback: the server itself never looks a name up off the machine.
        host_config = api.create_host_config(binds={str(self.srv): {"bind": "/srv", "mode": "rw"}},
                                             network_mode=self.network.name, dns=["127.0.0.1"])
        created = api.create_container(
            image, ["python3", "/opt/bottle-test/model_server.py", "--cert", "/srv/server.crt", "--key",
                    "/srv/server.key"],
            name=f"bottle-demo-model-{self.token}", labels=self.labels, host_config=host_config,
            networking_config=networking, detach=True,
            environment={"MODEL_SCRIPT": "/srv/script.json", "MODEL_LOG": "/srv/requests.jsonl"},
        )
        self.server = self.client.containers.get(created["Id"])
        self.server.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            output = self.server.logs().decode("utf-8", "replace")
            if "model server listening on https" in output:
                return
            self.server.reload()
            if self.server.status in ("exited", "dead"):
                raise DemoFailed(f"the model server exited before it was ready:\n{output}")
            time.sleep(0.1)
        raise DemoFailed(f"the model server was not ready after {READY_TIMEOUT:.0f}s")

    def write_manifest(self) -> Path:
        path = self.tmp / "bottle.toml"
        path.write_text(MANIFEST, encoding="utf-8")
        self.workspace.mkdir()
        (self.workspace / "README.txt").write_text("This folder was copied into the bottle's /workspace.\n")
        return path

    # what the server saw

    def requests(self) -> list[dict]:
        try:
            lines = (self.srv / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    # tear-down

    def close(self) -> None:
        """Remove the model server, anything still attached to the network, the network, the temp folder."""
        import docker.errors

        if self.server is not None:
            _quietly(lambda: self.server.remove(force=True))
        self._sweep_bottle()
        if self.network is not None:
            _quietly(self.network.reload)
            for container_id in list(self.network.attrs.get("Containers") or {}):
                self._release(container_id)
            try:
                self.network.remove()
                detail(f"removed network {self.network.name}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                print(f"warning: could not remove network {self.network.name}: {exc}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _sweep_bottle(self) -> None:
        """Remove what our `bottle run` left behind if it was cut short (bottle normally removes it all)."""
        if self.bottle_pid is None:
            return
        selector = {"label": f"{BOTTLE_PID_LABEL}={self.bottle_pid}"}
        leftovers = self.client.containers.list(all=True, filters=selector)
        for container in leftovers:
            _quietly(lambda c=container: c.remove(force=True))
        for network in self.client.networks.list(filters=selector):
            if network.name != getattr(self.network, "name", None):
                leftovers.append(network)
                _quietly(network.remove)
        if leftovers:
            detail(f"removed {len(leftovers)} resource(s) the interrupted bottle left behind")

    def _release(self, container_id: str) -> None:
        """Free the network of a container left on it: a bottle's bundle (if bottle run was killed) or ours."""
        import docker.errors

        try:
            container = self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return
        slug = container.labels.get("bottle.slug")
        if slug:
            # The bottle's own stop removes all of that bottle, not just the part on this network.
            subprocess.run([BOTTLE, "stop", slug], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        elif container.labels.get(DEMO_LABEL) == "1":
            _quietly(lambda: container.remove(force=True))
        else:
            _quietly(lambda: self.network.disconnect(container_id, force=True))


def _quietly(action) -> None:
    import docker.errors

    try:
        action()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        print(f"warning: clean-up: {exc}", file=sys.stderr)


# --- running the bottle ------------------------------------------------------


def _wait_quietly(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to end; True when it has."""
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def run_bottle(demo: Demo, manifest: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run the real ``bottle run`` and stream its output, indented; returns (exit code, output)."""
    argv = [BOTTLE, "run", "-m", str(manifest), "demo", "--", "-p", USER_PROMPT, "--output-format", "text"]
    detail("$ " + " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("BOTTLE_")))
    detail("  bottle run -m bottle.toml demo -- -p " + json.dumps(USER_PROMPT) + " --output-format text")
    # stdin is not a terminal, so bottle runs claude one-shot without a TTY.
    proc = subprocess.Popen(argv, cwd=demo.workspace, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    demo.bottle_pid = proc.pid
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            shown(line)

    # A reader thread, so a bottle that hangs without printing still meets the timeout below.
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DemoFailed(f"bottle run did not finish within {RUN_TIMEOUT:.0f}s") from None
    except KeyboardInterrupt:
        # Ctrl-C reached bottle too (same process group) and it is removing its bottle now:
        # a second signal would cut that clean-up short, so give it time first.
        _wait_quietly(proc, INTERRUPT_GRACE)
        raise
    finally:
        if proc.poll() is None:
            # SIGTERM lets bottle remove its own containers and networks before it exits.
            proc.terminate()
            if not _wait_quietly(proc, 60):
                proc.kill()
                _wait_quietly(proc, 10)
        reader.join(timeout=5)
    return code, "".join(lines)


# --- reading what the model server received ----------------------------------


def system_text(body: dict) -> str:
    system = body.get("system") or ""
    if isinstance(system, list):
        system = "\n".join(block.get("text", "") for block in system if isinstance(block, dict))
    return system


def tool_results(body: dict) -> list[str]:
    """The text of every tool_result block in a Messages API request body."""
    found = []
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = "\n".join(part.get("text", "") for part in inner if isinstance(part, dict))
                found.append(str(inner or ""))
    return found


def report_requests(requests: list[dict]) -> list[str]:
    """Print what the server received; return the checks that failed."""
    messages = [r for r in requests if r["method"] == "POST" and r["path"].split("?")[0] == "/v1/messages"]
    detail(f"{len(requests)} requests in all, {len(messages)} of them to POST /v1/messages:")
    for request in requests:
        tag = ""
        if request in messages:
            reply = request.get("reply") or {}
            tag = "  -> replied with a Bash tool call" if reply.get("tool_use") else "  -> replied with text"
        detail(f"  {request['method']} {request['path']}{tag}")
    failed = []

    prompt_seen = [m for m in messages if AGENT_PROMPT in system_text(m.get("body") or {})]
    if prompt_seen:
        system = system_text(prompt_seen[0]["body"])
        at = system.index(AGENT_PROMPT)
        detail(f"system prompt ({len(system)} characters) contains the agent's prompt:")
        shown("..." + system[max(0, at - 60):at + len(AGENT_PROMPT)].replace("\n", " "))
    else:
        failed.append(f"no request's system prompt contained {AGENT_PROMPT!r}")

    results = [text for m in messages for text in tool_results(m.get("body") or {})]
    hello = [text for text in results if TOOL_MARKER in text]
    if hello:
        detail("the Bash tool's result, sent back from inside the bottle:")
        shown(hello[0])
        if "root" in hello[0].split(TOOL_MARKER, 1)[1]:
            failed.append("the tool ran as root inside the bottle")
    else:
        failed.append(f"no tool result containing {TOOL_MARKER!r} reached the model (saw {results!r})")

    hosts = {r["headers"].get("host", "") for r in requests}
    detail(f"Host headers seen: {', '.join(sorted(hosts)) or '(none)'}")
    return failed


# --- the whole demo ------------------------------------------------------------


def _on_sigterm(signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        import docker
    except ImportError:
        print("error: the docker SDK is not installed in this Python (run `make venv`)", file=sys.stderr)
        return 2
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure here means the same to the user
        print(f"error: no Docker engine answers: {exc} (run `make engine`)", file=sys.stderr)
        return 2

    print("bottle demo: a real claude in a real bottle, answered by a scripted model on a local network.")
    demo = Demo(client)
    failed: list[str] = []
    status = 1  # when something failed
    try:
        step(1, "The scripted model server's image")
        image = ensure_server_image(client)

        step(2, "A stand-in internet on this machine")
        ca_pem = demo.make_certificates()
        detail(f"throwaway CA made; certificate issued for {MODEL_HOST}")
        network = demo.create_network()
        detail(f"internal docker network {network} created (no route off the machine)")
        script = [
            {"tool_use": {"name": "Bash", "input": {"command": TOOL_COMMAND,
                                                    "description": "Write a greeting file and show it"}}},
            FINAL_TEXT,
        ]
        demo.start_model_server(image, script)
        detail(f"model server {demo.server.name} answers as {MODEL_HOST} on it")
        detail("its script of replies:")
        detail("  1. a Bash tool call: " + TOOL_COMMAND)
        detail("  2. the text: " + json.dumps(FINAL_TEXT))

        step(3, "The manifest")
        manifest = demo.write_manifest()
        shown(MANIFEST)

        step(4, "bottle run (the real claude, as the agent user, through the bundle's proxy)")
        env = {"BOTTLE_DOCKER_OUTBOUND_NETWORK": network, "BOTTLE_UPSTREAM_CA_FILE": str(ca_pem),
               "BOTTLE_MODEL_HOST": MODEL_HOST,
               # The scripted model takes any key; a made-up one keeps a real key away from it.
               "ANTHROPIC_API_KEY": "sk-ant-demo-not-a-real-key-0123456789"}
        started = time.monotonic()
        code, output = run_bottle(demo, manifest, env)
        detail(f"bottle run exited with {code} after {time.monotonic() - started:.1f}s")
        if code != 0:
            failed.append(f"bottle run exited with {code}")
        if FINAL_TEXT not in output:
            failed.append("claude's answer did not reach the terminal")

        step(5, "What the model server received")
        failed += report_requests(demo.requests())
        if failed and demo.server is not None:
            print("\nmodel server output (last lines):", flush=True)
            shown(demo.server.logs().decode("utf-8", "replace")[-3000:])
    except DemoFailed as exc:
        failed.append(str(exc))
    except KeyboardInterrupt:
        failed.append("interrupted (Ctrl-C)")
        status = 130
    finally:
        print("\nCleaning up", flush=True)
        # Ctrl-C or SIGTERM during clean-up must not leave half of it undone.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            demo.close()
            detail("model server, network and temporary files removed")
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
            client.close()

    if failed:
        print("\nThe demo did NOT work:")
        for reason in failed:
            print(f"  - {reason}")
        return status
    print("\nThe demo worked: claude ran a tool inside the bottle, as a non-root user, and the only")
    print("model it talked to was the scripted server on this machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
