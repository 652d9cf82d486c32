"""The bottle demo: a rehearsal of the whole system, offline, with the real ``claude``.

What it does, step by step (each step is printed):

1. Builds the test-server image (``tests/servers``) if it is missing.
2. Makes a throwaway CA, an internal docker network standing in for the
   internet, and a web origin on it answering as ``allowed.test`` and
   ``denied.test``.
3. Writes a manifest: egress allows ``allowed.test`` only; the supervisor
   enforces a policy that denies ``Bash(rm -rf:*)``.
4. Runs ``bottle run --model-script`` -- no model key, no model host: the
   bundle answers the model host from a script whose tool calls read the
   copied workspace, run an allowed and a denied command, and make an allowed
   and a blocked web request.
5. Shows the end-of-run summary and the bottle's audit and egress logs.

Everything it creates is removed at the end, also after an error, Ctrl-C or
SIGTERM. Exit status 0 means every check passed.
"""

from __future__ import annotations

import json
import os
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
from tests.servers import image, internet  # noqa: E402
BOTTLE = str(Path(sys.executable).with_name("bottle"))

AGENT_PROMPT = "You are demo. Be brief."
USER_PROMPT = "Show what this bottle lets you do"
ORIGIN_NAMES = ("allowed.test", "denied.test")
FINAL_TEXT = "Done: read the workspace, ran echo, was refused rm -rf, fetched allowed.test, was refused denied.test."
SCRIPT = [
    {"tool_use": {"name": "Read", "input": {"file_path": "/workspace/README.txt"}}},
    {"tool_use": {"name": "Bash", "input": {"command": "echo hello from $(id -un) > /workspace/hello.txt",
                                            "description": "an allowed command"}}},
    {"tool_use": {"name": "Bash", "input": {"command": "rm -rf /workspace", "description": "a denied command"}}},
    {"tool_use": {"name": "Bash", "input": {"command": "curl -sS https://allowed.test/",
                                            "description": "an allowed web request"}}},
    {"tool_use": {"name": "Bash", "input": {"command": "curl -sS https://denied.test/",
                                            "description": "a blocked web request"}}},
    FINAL_TEXT,
]

#: ``{subnet}`` is the stand-in internet's range: its servers have private addresses, which a bottle
#: refuses unless its manifest opts the range in, as a user would for a server on their own machine.
MANIFEST = """\
# The demo's manifest: one bottle, one supervised agent.
[bottles.dev]
egress.allow = ["allowed.test"]
egress.allow_private = ["{subnet}"]

[agents.demo]
bottle = "dev"
prompt = "{prompt}"

[agents.demo.supervise]
mode = "enforce"
deny = ["Bash(rm -rf:*)"]
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
    """The demo's temporary folder, stand-in internet and web origin, all removed by ``close``."""

    def __init__(self, client):
        self.client = client
        self.labels = {DEMO_LABEL: "1", f"{DEMO_LABEL}.pid": str(os.getpid())}
        self.tmp = Path(tempfile.mkdtemp(prefix="bottle-demo-"))
        self.srv = self.tmp / "srv"  # mounted into the web origin
        self.workspace = self.tmp / "workspace"  # the directory bottle run copies into /workspace
        self.internet: internet.Internet | None = None
        self.server = None
        self.bottle_pid: int | None = None  # of the `bottle run` child, once started

    # set-up

    def make_certificates(self) -> Path:
        """A throwaway CA; a certificate for the origin's names signed by it. Returns the CA's PEM path."""
        self.srv.mkdir()
        self.srv.chmod(0o755)
        ca = internet.CertAuthority(self.tmp)
        self.cert, self.key = ca.issue(*ORIGIN_NAMES, directory=self.srv)
        return ca.pem_path

    def create_network(self, image: str) -> str:
        self.internet = internet.Internet.create(self.client, image, self.labels, prefix="bottle-demo-net")
        return self.internet.name

    def start_origin(self) -> None:
        assert self.internet is not None
        self.server = self.internet.start(
            f"bottle-demo-origin-{self.internet.name.rsplit('-', 1)[-1]}",
            ["python3", "/opt/bottle-test/origin.py", "--cert", f"/srv/{self.cert.name}", "--key",
             f"/srv/{self.key.name}", "--port", "443", "--http-port", "80"],
            aliases=ORIGIN_NAMES, binds={str(self.srv): {"bind": "/srv", "mode": "ro"}})
        try:
            internet.wait_until_listening(self.server, "origin listening on http port", READY_TIMEOUT)
        except internet.ServerNotReady as exc:
            raise DemoFailed(f"the web origin did not start: {exc}") from None

    def manifest_text(self) -> str:
        assert self.internet is not None
        return MANIFEST.format(subnet=self.internet.subnet, prompt=AGENT_PROMPT)

    def write_manifest(self) -> Path:
        path = self.tmp / "bottle.toml"
        path.write_text(self.manifest_text(), encoding="utf-8")
        (self.tmp / "script.json").write_text(json.dumps(SCRIPT, indent=1), encoding="utf-8")
        self.workspace.mkdir()
        (self.workspace / "README.txt").write_text("This folder was copied into the bottle's /workspace.\n")
        return path

    # tear-down

    def close(self) -> None:
        """Remove the web origin, anything still attached to the network, the network, the temp folder."""
        self._sweep_bottle()
        if self.internet is not None:
            self.internet.close(release=self._release)
            detail(f"removed network {self.internet.name}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _sweep_bottle(self) -> None:
        """Remove what our `bottle run` left behind if it was cut short (bottle normally removes it all)."""
        if self.bottle_pid is None:
            return
        selector = {"label": f"{BOTTLE_PID_LABEL}={self.bottle_pid}"}
        # bottle hands its removal to a process of its own and returns first: give that a minute to finish.
        deadline = time.monotonic() + 60
        leftovers = self.client.containers.list(all=True, filters=selector)
        while (leftovers or self.client.networks.list(filters=selector)) and time.monotonic() < deadline:
            time.sleep(0.2)
            leftovers = self.client.containers.list(all=True, filters=selector)
        for container in leftovers:
            _quietly(lambda c=container: c.remove(force=True))
        for network in self.client.networks.list(filters=selector):
            leftovers.append(network)
            _quietly(network.remove)
        if leftovers:
            detail(f"removed {len(leftovers)} resource(s) the interrupted bottle left behind")

    @staticmethod
    def _release(container) -> None:
        """A bottle's bundle still on the network (bottle run was killed): the bottle's own stop removes it all."""
        slug = container.labels.get("bottle.slug")
        if slug:
            subprocess.run([BOTTLE, "stop", slug], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


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
    argv = [BOTTLE, "run", "-m", str(manifest), "--model-script", str(demo.tmp / "script.json"), "demo", "--",
            "-p", USER_PROMPT, "--output-format", "text"]
    detail("$ " + " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("BOTTLE_")))
    detail("  bottle run -m bottle.toml --model-script script.json demo -- -p " + json.dumps(USER_PROMPT)
           + " --output-format text")
    # stdin is not a terminal, so bottle runs claude one-shot without a TTY.
    environment = {key: value for key, value in {**os.environ, **env}.items() if key != "ANTHROPIC_API_KEY"}
    proc = subprocess.Popen(argv, cwd=demo.workspace, env=environment, stdin=subprocess.DEVNULL,
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


# --- what the bottle's logs say -----------------------------------------------


def bottle_logs(kind: str) -> list[dict]:
    result = subprocess.run([BOTTLE, "logs", "demo", f"--{kind}", "--json"], capture_output=True, text=True,
                            timeout=60)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def report_logs(output: str) -> list[str]:
    """Show the audit and egress logs as `bottle logs` prints them; return the checks that failed."""
    text = subprocess.run([BOTTLE, "logs", "demo", "--audit", "--egress"], capture_output=True, text=True, timeout=60)
    shown(text.stdout)
    failed = []
    audit, egress = bottle_logs("audit"), bottle_logs("egress")
    calls = [(r.get("tool"), r.get("decision")) for r in audit if r.get("event") == "PreToolUse"]
    if calls != [("Read", "allow"), ("Bash", "allow"), ("Bash", "deny"), ("Bash", "allow"), ("Bash", "allow")]:
        failed.append(f"the supervisor decided {calls}")
    decisions = {(r.get("host"), r.get("decision")) for r in egress}
    for expected in (("allowed.test", "allow"), ("denied.test", "deny")):
        if expected not in decisions:
            failed.append(f"the egress log lacks {expected}")
    # Rehearsal records say who answered: the model script (rule model-script), never the real host.
    to_model = [r for r in egress if r.get("host") == "api.anthropic.com" and r.get("decision") == "allow"]
    if not to_model:
        failed.append("the egress log shows no request to the model host (the script was never asked)")
    if any(r.get("rule") != "model-script" for r in to_model):
        failed.append("a request went to the real model host")
    if not ("supervise: 5 tool calls" in output and "4 allowed, 1 denied by policy" in output):
        failed.append("the end-of-run summary is missing")
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
    # The demo's bottle keeps its state and logs in the demo's own folder: `bottle logs demo` below reads this
    # run's bottle, never another bottle of an agent named demo, and nothing outlives the demo.
    os.environ["XDG_STATE_HOME"] = str(demo.tmp / "state")
    # Its approval of the manifest too: the user's own approvals are neither read nor added to.
    os.environ["XDG_CONFIG_HOME"] = str(demo.tmp / "config")
    failed: list[str] = []
    status = 1  # when something failed
    try:
        step(1, "The test-server image (a web origin)")
        server_image = ensure_server_image(client)

        step(2, "A stand-in internet on this machine")
        ca_pem = demo.make_certificates()
        detail(f"throwaway CA made; certificate issued for {', '.join(ORIGIN_NAMES)}")
        network = demo.create_network(server_image)
        detail(f"internal docker network {network} created (no route off the machine)")
        demo.start_origin()
        detail(f"web origin {demo.server.name} answers as {' and '.join(ORIGIN_NAMES)} on it")

        step(3, "The manifest and the model script (no model, no key: the bundle plays the script)")
        manifest = demo.write_manifest()
        shown(manifest.read_text(encoding="utf-8"))
        for number, reply in enumerate(SCRIPT, 1):
            tool = reply.get("tool_use") if isinstance(reply, dict) else None
            what = f"{tool['name']} {tool['input'].get('command') or tool['input'].get('file_path')}" if tool else reply
            detail(f"  {number}. {what}")

        # Opting the stand-in internet's private range in opens a network of this machine: a binding to approve.
        detail("$ bottle trust -m bottle.toml")
        trusted = subprocess.run([BOTTLE, "trust", "-m", str(manifest)], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=60)
        shown(trusted.stdout + trusted.stderr)
        if trusted.returncode != 0:
            raise DemoFailed(f"bottle trust exited with {trusted.returncode}")

        step(4, "bottle run --model-script (the real claude, as the agent user, supervised)")
        env = {"BOTTLE_DOCKER_OUTBOUND_NETWORK": network, "BOTTLE_UPSTREAM_CA_FILE": str(ca_pem)}
        started = time.monotonic()
        code, output = run_bottle(demo, manifest, env)
        detail(f"bottle run exited with {code} after {time.monotonic() - started:.1f}s")
        if code != 0:
            failed.append(f"bottle run exited with {code}")
        if FINAL_TEXT not in output:
            failed.append("claude's answer did not reach the terminal")

        step(5, "The story, from the bottle's logs: bottle logs demo --audit --egress")
        failed += report_logs(output)
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
            detail("web origin, network and temporary files removed")
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
            client.close()

    if failed:
        print("\nThe demo did NOT work:")
        for reason in failed:
            print(f"  - {reason}")
        return status
    print("\nThe demo worked: every tool call was judged outside the sandbox, every request by the proxy,")
    print("and the only model claude talked to was the script, inside the bundle.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
