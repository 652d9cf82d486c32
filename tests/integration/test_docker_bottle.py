"""Real bottles on the real engine: the handle, provisioning, privileges, workspace, cleanup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from .bottles import (background_bottle, bottle_cli, bottle_of, left_after, resources_of, smol_machines, tcp_probe, wait_for_line,
                      write_manifest)

pytestmark = pytest.mark.integration

PROMPT = "You are tester. Answer in one word.\n"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "tester.md").write_text(PROMPT)
    return write_manifest(tmp_path, {
        "bottles": {"dev": {"memory": "768m", "pids": 300, "cpus": 1.5}},
        "agents": {
            "tester": {"bottle": "dev", "prompt_file": "prompts/tester.md", "skills": ["hello", "review"]},
            "plain": {"bottle": "dev"},
        },
    }, skills={
        "hello": {"SKILL.md": "---\nname: hello\n---\nSay hello.\n", "scripts/run.sh": "echo hi\n"},
        "review": {"SKILL.md": "---\nname: review\n---\nReview code.\n"},
    })


def test_exec_round_trip(manifest, backend):
    with bottle_of(manifest, "plain", backend=backend) as bottle:
        result = bottle.exec(["sh", "-c", "echo to-out; echo to-err >&2; exit 7"])
        assert (result.returncode, result.stdout, result.stderr) == (7, b"to-out\n", b"to-err\n")
        assert bottle.exec("true").returncode == 0
        assert bottle.exec(["cat"], stdin=b"fed through stdin").stdout == b"fed through stdin"
        assert bottle.exec(["pwd"]).stdout.strip() == b"/workspace"


def test_prompt_and_skills_land(manifest, backend):
    with bottle_of(manifest, "tester", backend=backend) as bottle:
        guest = bottle.plan.guest
        prompt = bottle.exec(["cat", guest.prompt_file])
        assert prompt.stdout.decode() == PROMPT
        assert bottle.exec(["stat", "-c", "%a %U", guest.prompt_file]).stdout.split() == [b"600", b"agent"]
        assert bottle.exec(["cat", f"{guest.skills_dir}/hello/scripts/run.sh"]).stdout == b"echo hi\n"
        listing = bottle.exec(["find", guest.skills_dir, "-type", "f"]).stdout.decode().split()
        assert sorted(p.removeprefix(guest.skills_dir + "/") for p in listing) == [
            "hello/SKILL.md", "hello/scripts/run.sh", "review/SKILL.md"]
        owners = bottle.exec(["find", guest.skills_dir, "!", "-user", "agent"]).stdout
        assert owners == b""


def test_no_prompt_means_no_prompt_file(manifest):
    with bottle_of(manifest, "plain") as bottle:
        assert not bottle.plan.has_prompt
        assert bottle.exec(["test", "-e", bottle.plan.guest.prompt_file]).returncode == 1
        assert "--append-system-prompt-file" not in bottle.claude_argv([], interactive=False)


def test_agent_is_unprivileged_and_limited(manifest):
    with bottle_of(manifest, "plain") as bottle:
        assert bottle.exec(["id", "-u"]).stdout.strip() == b"1000"
        status = dict(line.split(":\t", 1) for line in bottle.exec(["cat", "/proc/self/status"]).text().splitlines()
                      if ":\t" in line)
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[cap], 16) == 0, cap
        assert status["NoNewPrivs"].strip() == "1"
        # No engine socket anywhere it usually lives.
        assert bottle.exec("ls /var/run/docker.sock /run/docker.sock").returncode != 0
        # cgroup v2 files first, v1 second: engines run on either.
        def cgroup(v2: str, v1: str) -> bytes:
            return bottle.exec(f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}").stdout.split()[0]

        assert cgroup("memory.max", "memory/memory.limit_in_bytes") == str(768 * 1024 * 1024).encode()
        assert cgroup("pids.max", "pids/pids.max") == b"300"
        assert cgroup("cpu.max", "cpu/cpu.cfs_quota_us") == b"150000"
        assert b"tmpfs /tmp" in bottle.exec(["cat", "/proc/mounts"]).stdout
        # su/sudo cannot bring root back.
        assert bottle.exec("su -c id root </dev/null").returncode != 0


def test_workspace_is_a_copy(manifest, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hi')\n")
    (project / "README").write_text("readme\n")

    def digest() -> str:
        h = hashlib.sha256()
        for path in sorted(project.rglob("*")):
            h.update(str(path).encode() + (path.read_bytes() if path.is_file() else b""))
        return h.hexdigest()

    before = digest()
    with bottle_of(manifest, "plain", copy_cwd=True, cwd=project) as bottle:
        assert bottle.exec(["cat", "/workspace/src/main.py"]).stdout == b"print('hi')\n"
        assert bottle.exec(["stat", "-c", "%U", "/workspace/src/main.py"]).stdout.strip() == b"agent"
        assert bottle.exec("echo changed > /workspace/README && rm /workspace/src/main.py").returncode == 0
        assert bottle.exec(["cat", "/workspace/README"]).stdout == b"changed\n"
        out = tarfile.open(fileobj=io.BytesIO(bottle.copy_out("/workspace/README")))
        assert out.extractfile(out.getmembers()[0]).read() == b"changed\n"
    assert digest() == before


def bundle_processes(bottle, pattern: str) -> list[str]:
    """Pids of the bundle's processes whose command line matches ``pattern`` (a grep pattern that does not match
    itself, so the probe never finds its own shell)."""
    found = bottle.exec_bundle(["sh", "-c", f"for p in /proc/[0-9]*; do grep -q '{pattern}' $p/cmdline 2>/dev/null "
                                            "&& echo ${p#/proc/}; done"], user="nobody")
    return found.stdout.decode().split()


def test_the_git_gate_starts_on_first_use_and_serves_it(manifest, tmp_path):
    """No gate process until the agent first talks to it; then that very request is served, as later ones."""
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@example.test",
           "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@example.test"}
    for step in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", str(project), *step], check=True, env=env)
    head = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    with bottle_of(manifest, "plain", copy_cwd=True, cwd=project) as bottle:
        assert bundle_processes(bottle, "image[.]git_gate") == [], "the gate runs before anything used it"
        listed = bottle.exec(["git", "-C", "/workspace", "ls-remote", "origin", "refs/heads/main"])
        assert listed.ok, listed.stderr
        assert listed.stdout.decode().split() == [head, "refs/heads/main"]
        gate = bundle_processes(bottle, "image[.]git_gate")
        assert len(gate) == 1, "the first request started the gate"
        again = bottle.exec(["git", "-C", "/workspace", "ls-remote", "origin", "refs/heads/main"])
        assert again.ok and again.stdout == listed.stdout
        assert bundle_processes(bottle, "image[.]git_gate") == gate


def test_everything_removed_after_normal_exit_and_exception(manifest, backend):
    with bottle_of(manifest, "plain", backend=backend) as bottle:
        slug = bottle.plan.slug
        if backend == "k8s":
            made = cluster_objects(slug)
            assert sorted(o.split()[0] for o in made) == ["networkpolicy", "networkpolicy", "pod", "pod"], made
        else:
            containers, networks = resources_of("bottle.slug", slug)
            # docker: the agent and the bundle; smol: the bundle, beside the agent's microVM.
            assert len(containers) >= (2 if backend == "docker" else 1) and networks == [bottle.plan.network.name]
            assert smol_machines(slug) == ([f"bottle-{slug}"] if backend == "smol" else [])
            # The bottle network's subnet comes from bottle's own pool, never the engine's (it holds only ~30).
            seen = subprocess.run(["docker", "network", "inspect", networks[0], "-f",
                                   "{{(index .IPAM.Config 0).Subnet}}"], capture_output=True, text=True, check=True)
            assert seen.stdout.strip() == bottle.plan.network.subnet and seen.stdout.startswith("10.213.")
            # Bundles share one way out, on which they cannot reach each other.
            shared = json.loads(subprocess.run(["docker", "network", "inspect", bottle.plan.network.outbound],
                                               capture_output=True, check=True).stdout)[0]
            assert shared["Options"].get("com.docker.network.bridge.enable_icc") == "false"
            assert "bottle.slug" not in (shared.get("Labels") or {})
    assert leftovers(backend, slug) == []
    # The plan and logs stay for `bottle logs` (gc ages them out); the prompt copy does not.
    state = Path(bottle.plan.state_dir)
    assert (state / "plan.json").is_file() and (state / "finished").is_file()
    assert not (state / "prompt.md").exists()
    if backend != "k8s":
        assert subprocess.run(["docker", "network", "inspect", bottle.plan.network.outbound],
                              capture_output=True).returncode == 0, "the shared outbound network stays"

    with pytest.raises(RuntimeError, match="boom"):
        with bottle_of(manifest, "plain", backend=backend) as bottle:
            slug = bottle.plan.slug
            raise RuntimeError("boom")
    assert leftovers(backend, slug) == []


def cluster_objects(slug: str) -> list[str]:
    from .test_k8s import objects_of

    return objects_of(slug)


def leftovers(backend: str, slug: str) -> list[str]:
    """What is left of bottle ``slug``: containers, networks, microVMs, and on k8s the cluster's objects."""
    containers, networks = left_after("bottle.slug", slug)  # removal finishes just after the run
    return [*containers, *networks, *smol_machines(slug), *(cluster_objects(slug) if backend == "k8s" else [])]


def test_sigterm_to_bottle_exec_removes_everything(tmp_path):
    agent = f"term-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    with background_bottle(manifest, agent, "sh", "-c", "echo started; exec sleep 120") as (proc, slug):
        wait_for_line(proc, b"started")  # provisioning is over and the command runs
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert left_after("bottle.agent", agent) == ([], [])


def test_cli_exec_ls_stop_gc(tmp_path):
    agent = f"cli-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})

    result = bottle_cli("exec", "-m", str(manifest), agent, "--", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (result.returncode, result.stdout, result.stderr) == (5, b"out\n", b"err\n")
    assert left_after("bottle.agent", agent) == ([], [])

    # A bottle whose `bottle` process dies without cleaning up is found by ls, and ends by itself
    # (its reaper; see test_seal_lifecycle.py); gc finds nothing of it left.
    with background_bottle(manifest, agent) as (proc, slug):
        table = bottle_cli("ls").stdout.decode()
        assert slug in table and "docker" in table
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while resources_of("bottle.slug", slug) != ([], []) and time.monotonic() < deadline:
            time.sleep(0.5)
        gc = bottle_cli("gc")
        assert gc.returncode == 0, gc.stderr
        assert left_after("bottle.slug", slug) == ([], [])

    with background_bottle(manifest, agent) as (proc, slug):
        stopped = bottle_cli("stop", slug)
        assert stopped.returncode == 0 and slug in stopped.stdout.decode()
        assert left_after("bottle.slug", slug) == ([], [])
        assert proc.wait(timeout=60) != 0
    again = bottle_cli("stop", slug)
    assert again.returncode == 2 and b"no running bottle" in again.stderr


def test_cli_bad_input_is_one_line(tmp_path):
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev"}}})
    unknown = bottle_cli("exec", "-m", str(manifest), "nobody", "--", "true")
    assert unknown.returncode == 2
    assert unknown.stderr.decode().count("\n") == 1 and "nobody" in unknown.stderr.decode()
    no_engine = bottle_cli("exec", "-m", str(manifest), "demo", "--", "true",
                           env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert no_engine.returncode == 1
    line = no_engine.stderr.decode()
    assert line.count("\n") == 1 and "no Docker engine" in line and "Traceback" not in line


def test_exec_gets_a_tty_when_the_user_has_one(tmp_path):
    """`bottle exec` from a terminal attaches one in the bottle (as `bottle run` does for claude)."""
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"demo": {"bottle": "dev"}}})
    bottle = str(Path(os.sys.executable).with_name("bottle"))
    # `script` gives the bottle command a pseudo-terminal as its stdin and stdout.
    result = subprocess.run(["script", "-qec", f"{bottle} exec -m {manifest} demo -- tty", "/dev/null"],
                            capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"/dev/pts/" in result.stdout
    piped = bottle_cli("exec", "-m", str(manifest), "demo", "--", "tty")
    assert piped.returncode == 1 and b"not a tty" in piped.stdout


def test_missing_image_that_cannot_be_built_is_one_line(tmp_path):
    agent = f"noimg-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {"image": "bottle-no-such-base:1"}},
                                         "agents": {agent: {"bottle": "dev"}}})
    result = bottle_cli("exec", "-m", str(manifest), agent, "--", "true")
    assert result.returncode == 1
    line = result.stderr.decode()
    assert line.count("\n") == 1 and "bottle-no-such-base:1" in line and "Traceback" not in line
    assert left_after("bottle.agent", agent) == ([], [])


def test_a_secret_with_no_value_is_one_line_naming_its_field_and_leaves_nothing(tmp_path):
    agent = f"nosecret-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {"egress": {"allow": ["allowed.test"]}, "secrets": {"TOK": {
        "from_file": str(tmp_path / "no-such-token"), "hosts": ["allowed.test"]}}}},
        "agents": {agent: {"bottle": "dev"}}})
    result = bottle_cli("exec", "-m", str(manifest), agent, "--", "true")
    line = result.stderr.decode()
    assert result.returncode == 2 and line.count("\n") == 1 and "Traceback" not in line, line
    assert line.startswith(f"bottle: error: {manifest}: bottles.dev.secrets.TOK.from_file: ") and "no-such-token" in line
    assert left_after("bottle.agent", agent) == ([], [])
    (tmp_path / "no-such-token").write_text("now-it-has-one\n")  # the counterpart: with a value, it runs
    assert bottle_cli("exec", "-m", str(manifest), agent, "--", "true").returncode == 0

def test_a_subnet_taken_after_planning_is_replaced_at_launch(manifest):
    """Two bottles launched at once can plan the same free subnet; the second one moves, it does not fail."""
    from bottle_core import session
    from bottle_core.manifest import Manifest
    from bottle_core.plan import Plan
    from bottle_core.spec import BottleSpec

    from .bottles import docker_plugins

    plugins = docker_plugins()
    spec = BottleSpec(manifest=Manifest.load(manifest), agent="plain", copy_cwd=False, cwd=manifest.parent)
    plan = session.prepare(plugins, spec)
    squatter = f"bottle-test-squatter-{uuid.uuid4().hex[:6]}"
    planned = plan.network.subnet
    subprocess.run(["docker", "network", "create", "--internal", "--subnet", planned, "--label", "bottle.test=1",
                    squatter], check=True, capture_output=True)
    try:
        with session.running(plugins, plan) as bottle:
            assert bottle.plan.network.subnet != planned
            assert bottle.exec(["true"]).ok
            ip = bottle.plan.network.bundle_ip
            assert tcp_probe(bottle, ip, bottle.plan.proxy.port)
            assert bottle.exec(["printenv", "HTTPS_PROXY"]).stdout.strip() == f"http://{ip}:8080".encode()
            # A new plan, saved again; the one handed to launch is as prepare made it.
            assert plan.network.subnet == planned
            saved = Plan.read(Path(plan.state_dir) / "plan.json")
            assert saved.network.subnet == bottle.plan.network.subnet and saved.proxy.listen_host == ip
    finally:
        subprocess.run(["docker", "network", "rm", squatter], capture_output=True)
    assert left_after("bottle.slug", plan.slug) == ([], [])


#: Bottles started at once from as many processes.
MANY = 16
#: Each bottle says where it is, waits for the others' addresses on stdin, then tries every one of them.
PROBE_OTHERS = r"""
bundle=${HTTPS_PROXY#http://}; bundle=${bundle%:*}
echo "me $(hostname -i | cut -d' ' -f1) $bundle"
read -r others
# The control: the probe does reach what is reachable (its own bundle's proxy).
timeout 2 bash -c "exec 3<>/dev/tcp/$bundle/8080" && echo "own bundle answers"
for address in $others; do
    [ "$address" = "$bundle" ] && continue
    for port in 8080 9418 22; do
        timeout 2 bash -c "exec 3<>/dev/tcp/$address/$port" 2>/dev/null && echo "reached $address:$port"
    done
done
echo done
"""


def test_many_bottles_at_once_all_run_none_reaches_another_and_all_go(tmp_path):
    agent = f"many-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    procs = [subprocess.Popen([str(Path(os.sys.executable).with_name("bottle")), "exec", "-m", str(manifest), agent,
                               "--", "bash", "-c", PROBE_OTHERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(MANY)]
    try:
        # Every bottle up at once: each says its agent's and its bundle's address.
        addresses = [wait_for_line(proc, b"me ", timeout=600).split()[1:] for proc in procs]
        everyone = " ".join(a.decode() for pair in addresses for a in pair)
        assert len(set(everyone.split())) == 2 * MANY, everyone
        outputs = [proc.communicate(everyone.encode() + b"\n", timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    assert [proc.returncode for proc in procs] == [0] * MANY, [err[-500:] for _, err in outputs]
    # Its own bundle is each bottle's only peer: no other bottle's agent or bundle answered on any port.
    expected = b"own bundle answers\ndone\n"
    assert [out for out, _ in outputs] == [expected] * MANY, [out for out, _ in outputs if out != expected]
    assert left_after("bottle.agent", agent) == ([], [])
